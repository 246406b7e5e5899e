#!/usr/bin/env python
"""Compile efficientvit_mm's CPU kernels (efficientvit_mm/deploy/csrc)
against the installed torch, into $EVIT_CACHE/kernels. tools/setup_env.sh
runs it; the package also builds them at first use where they are missing.

    python tools/build_kernels.py [-v]
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's package, installed or not


def main(argv=None) -> int:
    from efficientvit_mm.deploy import native
    from efficientvit_mm.runtime import args as cli
    parser = cli.tool_parser(__file__, __doc__, raw=True)
    parser.add_argument('-v', '--verbose', action='store_true',
                        help="show the compiler's commands")
    return native.build_main(parser.parse_args(argv).verbose)


if __name__ == '__main__':
    from efficientvit_mm.runtime.errors import exit_on_user_error
    exit_on_user_error('tools/build_kernels.py', main)

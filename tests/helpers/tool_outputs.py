"""Reading what the tools write: CSV rows and PNG sizes."""
import csv


def read_csv(path):
    """The rows of a CSV file as dicts."""
    with open(path) as f:
        return list(csv.DictReader(f))


def png_size(path):
    """(width, height) of a PNG file; fails if it is not a PNG."""
    with open(path, 'rb') as f:
        header = f.read(24)
    assert header[:8] == b'\x89PNG\r\n\x1a\n', f'{path} is not a PNG'
    return int.from_bytes(header[16:20],
                          'big'), int.from_bytes(header[20:24], 'big')

// A recorded sequence of operator calls, replayed from C++:
// torch.classes.efficientvit_mm.OpReplay (see efficientvit_mm/deploy/replay.py,
// which records it from one eager forward and decides when it may replay).
//
// A small network of small layers spends a large share of its CPU inference
// time in Python: the module calls and attribute reads between operators. The
// operators a deploy forward calls depend only on the input's shape, so the
// sequence recorded once can be called again directly through the
// dispatcher, each call with the same arguments, the input's slot filled in.
//
// Values live in numbered slots: slot 0 is the input, each step's outputs go
// to the slots it names, and a slot is released after its last reader, as
// Python would free the tensor.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <string>
#include <vector>

namespace efficientvit_mm {
namespace {

// how one argument of a step is given (replay.py writes the same codes)
enum Kind : int64_t {
  kNone = 0,        // None
  kSlot = 1,        // the tensor in slot a
  kTensor = 2,      // constant tensor a
  kInt = 3,         // ints[a]
  kFloat = 4,       // floats[a]
  kBool = 5,        // ints[a] != 0
  kIntList = 6,     // ints[a, a + b)
  kString = 7,      // strings[a]
  kTensorList = 8,  // ints[a, a + b): >= 0 a slot, < 0 constant tensor -1 - i
  kEmptyList = 9,   // an empty list of the schema's element type
  kDevice = 10,     // the device named strings[a]
  kOptionalTensorList = 11,  // as kTensorList, kNoTensor for None
  kWrappedNumber = 12,  // a Python number where a tensor goes: ints[a]
                        // (b = 0), floats[a] (b = 1) or ints[a] != 0 (b = 2)
};
constexpr int64_t kNoTensor = -(int64_t(1) << 62);

struct Arg {
  int64_t kind = kNone;
  int64_t slot = -1;            // kSlot
  std::vector<int64_t> refs;    // kTensorList, kOptionalTensorList
  c10::IValue value;            // every other kind
};

struct Step {
  c10::OperatorHandle op;
  std::vector<Arg> args;
  // per return: the slots of its tensors (one, or one per element of a list)
  std::vector<std::vector<int64_t>> outs;
  std::vector<bool> out_is_list;
  std::vector<int64_t> release;  // slots read for the last time here
};

c10::TypePtr unwrap_optional(c10::TypePtr type) {
  if (auto opt = type->cast<c10::OptionalType>()) return opt->getElementType();
  return type;
}

struct OpReplay : torch::CustomClassHolder {
  std::vector<Step> steps;
  std::vector<at::Tensor> constants;
  std::vector<int64_t> outputs;
  int64_t slots = 1;
  // tensors whose data or version, when changed, make the recording stale
  std::vector<at::Tensor> watched;
  std::vector<int64_t> versions;
  std::vector<const void*> pointers;

  void add_step(const std::string& name, const std::string& overload,
                const std::vector<int64_t>& spec,
                const std::vector<int64_t>& ints,
                const std::vector<double>& floats,
                const std::vector<std::string>& strings,
                const std::vector<at::Tensor>& tensors,
                const std::vector<int64_t>& out_spec,
                const std::vector<int64_t>& release) {
    auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(
        name.c_str(), overload.c_str());
    const auto& schema = handle.schema();
    TORCH_CHECK(spec.size() == 3 * schema.arguments().size(),
                "OpReplay: ", name, " takes ", schema.arguments().size(),
                " arguments, got ", spec.size() / 3);
    Step step{handle, {}, {}, {}, release};
    const int64_t base = static_cast<int64_t>(constants.size());
    constants.insert(constants.end(), tensors.begin(), tensors.end());
    for (size_t i = 0; i < schema.arguments().size(); ++i) {
      Arg arg;
      arg.kind = spec[3 * i];
      const int64_t a = spec[3 * i + 1], b = spec[3 * i + 2];
      switch (arg.kind) {
        case kNone: break;
        case kSlot:
          TORCH_CHECK(a >= 0 && a < slots, "OpReplay: ", name,
                      " reads slot ", a, " before any step wrote it");
          arg.slot = a;
          break;
        case kTensor: arg.value = constants.at(base + a); break;
        case kInt: arg.value = ints.at(a); break;
        case kFloat: arg.value = floats.at(a); break;
        case kBool: arg.value = ints.at(a) != 0; break;
        case kIntList:
          TORCH_CHECK(a >= 0 && b >= 0 && a + b <= static_cast<int64_t>(ints.size()),
                      "OpReplay: int list out of range for ", name);
          arg.value = c10::List<int64_t>(
              std::vector<int64_t>(ints.begin() + a, ints.begin() + a + b));
          break;
        case kString: arg.value = strings.at(a); break;
        case kTensorList:
        case kOptionalTensorList:
          TORCH_CHECK(a >= 0 && b >= 0 && a + b <= static_cast<int64_t>(ints.size()),
                      "OpReplay: tensor list out of range for ", name);
          for (int64_t j = a; j < a + b; ++j) {
            const int64_t ref = ints.at(j);
            if (ref == kNoTensor && arg.kind == kOptionalTensorList) {
              arg.refs.push_back(kNoTensor);
              continue;
            }
            TORCH_CHECK(ref < slots, "OpReplay: ", name, " reads slot ", ref,
                        " before any step wrote it");
            TORCH_CHECK(ref >= 0 || base + (-1 - ref) <
                                        static_cast<int64_t>(constants.size()),
                        "OpReplay: ", name, " reads a missing constant");
            // a constant of this step (-1 - i) becomes one of the program
            // (-1 - (base + i))
            arg.refs.push_back(ref >= 0 ? ref : -1 - (base + (-1 - ref)));
          }
          break;
        case kEmptyList: {
          auto list = unwrap_optional(schema.arguments()[i].type())
                          ->cast<c10::ListType>();
          TORCH_CHECK(list, "OpReplay: argument ", i, " of ", name,
                      " is not a list");
          arg.value = c10::impl::GenericList(list->getElementType());
          break;
        }
        case kDevice: arg.value = c10::Device(strings.at(a)); break;
        case kWrappedNumber: {
          at::Tensor number =
              b == 1 ? at::scalar_tensor(floats.at(a), at::kDouble)
              : b == 2 ? at::scalar_tensor(ints.at(a) != 0, at::kBool)
                       : at::scalar_tensor(ints.at(a), at::kLong);
          number.unsafeGetTensorImpl()->set_wrapped_number(true);
          arg.value = number;
          break;
        }
        default: TORCH_CHECK(false, "OpReplay: unknown argument kind ", arg.kind);
      }
      step.args.push_back(std::move(arg));
    }
    // out_spec, per return: (is_list, n, n slots)
    for (size_t i = 0; i + 1 < out_spec.size();) {
      const int64_t n = out_spec[i + 1];
      TORCH_CHECK(n >= 0 && i + 2 + static_cast<size_t>(n) <= out_spec.size() &&
                      (out_spec[i] != 0 || n == 1),
                  "OpReplay: bad output spec for ", name);
      for (size_t j = i + 2; j < i + 2 + static_cast<size_t>(n); ++j)
        TORCH_CHECK(out_spec[j] >= 0, "OpReplay: negative output slot for ",
                    name);
      step.out_is_list.push_back(out_spec[i] != 0);
      step.outs.emplace_back(out_spec.begin() + i + 2,
                             out_spec.begin() + i + 2 + n);
      i += 2 + n;
    }
    TORCH_CHECK(step.outs.size() == schema.returns().size(), "OpReplay: ",
                name, " returns ", schema.returns().size(), " values, got ",
                step.outs.size());
    for (const auto& out : step.outs)
      for (int64_t s : out) slots = std::max(slots, s + 1);
    for (int64_t s : step.release)
      TORCH_CHECK(s >= 0 && s < slots, "OpReplay: ", name, " releases slot ",
                  s, ", which no step writes");
    steps.push_back(std::move(step));
  }

  void set_outputs(const std::vector<int64_t>& slots_out) {
    for (int64_t s : slots_out)
      TORCH_CHECK(s >= 0 && s < slots, "OpReplay: output slot ", s,
                  " is never written");
    outputs = slots_out;
  }

  void watch(const std::vector<at::Tensor>& tensors) {
    watched = tensors;
    versions.clear();
    pointers.clear();
    for (const auto& t : watched) {
      versions.push_back(t.is_inference() ? -1 : t._version());
      pointers.push_back(t.data_ptr());
    }
  }

  // whether every watched tensor keeps the data and version it was recorded
  // with
  bool current() const {
    for (size_t i = 0; i < watched.size(); ++i) {
      const auto& t = watched[i];
      if (t.data_ptr() != pointers[i] ||
          (!t.is_inference() && t._version() != versions[i]))
        return false;
    }
    return true;
  }

  int64_t size() const { return static_cast<int64_t>(steps.size()); }

  std::vector<at::Tensor> run(const at::Tensor& input) const {
    std::vector<c10::IValue> slot(slots);
    slot[0] = input;
    torch::jit::Stack stack;
    for (const auto& step : steps) {
      stack.clear();
      for (const auto& arg : step.args) {
        if (arg.kind == kSlot) {
          TORCH_CHECK(!slot[arg.slot].isNone(), "OpReplay: ",
                      step.op.schema().name(), " reads slot ", arg.slot,
                      ", released or never written");
          stack.push_back(slot[arg.slot]);
        } else if (arg.kind == kTensorList) {
          c10::List<at::Tensor> list;
          list.reserve(arg.refs.size());
          for (int64_t ref : arg.refs)
            list.push_back(ref >= 0 ? slot[ref].toTensor()
                                    : constants[-1 - ref]);
          stack.emplace_back(std::move(list));
        } else if (arg.kind == kOptionalTensorList) {
          c10::List<std::optional<at::Tensor>> list;
          list.reserve(arg.refs.size());
          for (int64_t ref : arg.refs) {
            if (ref == kNoTensor)
              list.push_back(std::nullopt);
            else
              list.push_back(ref >= 0 ? slot[ref].toTensor()
                                      : constants[-1 - ref]);
          }
          stack.emplace_back(std::move(list));
        } else {
          stack.push_back(arg.value);
        }
      }
      step.op.callBoxed(&stack);
      for (size_t r = 0; r < step.outs.size(); ++r) {
        if (!step.out_is_list[r]) {
          slot[step.outs[r][0]] = std::move(stack[r]);
        } else {
          auto list = stack[r].toTensorList();
          TORCH_CHECK(list.size() == step.outs[r].size(),
                      "OpReplay: ", step.op.schema().name(), " returned ",
                      list.size(), " tensors, recorded ",
                      step.outs[r].size());
          for (size_t j = 0; j < list.size(); ++j)
            slot[step.outs[r][j]] = list.get(j);
        }
      }
      for (int64_t s : step.release) slot[s] = c10::IValue();
    }
    std::vector<at::Tensor> result;
    result.reserve(outputs.size());
    for (int64_t s : outputs) result.push_back(slot[s].toTensor());
    return result;
  }
};

}  // namespace
}  // namespace efficientvit_mm

TORCH_LIBRARY_FRAGMENT(efficientvit_mm, m) {
  m.class_<efficientvit_mm::OpReplay>("OpReplay")
      .def(torch::init<>())
      .def("add_step", &efficientvit_mm::OpReplay::add_step)
      .def("set_outputs", &efficientvit_mm::OpReplay::set_outputs)
      .def("watch", &efficientvit_mm::OpReplay::watch)
      .def("current", &efficientvit_mm::OpReplay::current)
      .def("size", &efficientvit_mm::OpReplay::size)
      .def("run", &efficientvit_mm::OpReplay::run);
}

#!/usr/bin/env python3
"""Writes the pickle fixtures of NNPickleTests with CPython's own pickler, and expected.json.

Run from this directory: python3 make_pickles.py. Needs numpy only: torch is not imported.
The torch-like files are made by the real pickler with stand-ins registered under torch's module
names (torch, torch._utils, torch.nn.modules.*), so that their bytes are what torch.save writes:
protocol 2, `_rebuild_tensor_v2` reductions, ('storage', <type>, key, 'cpu', numel) persistent ids,
OrderedDict state dicts with `_metadata`, and nn.Module objects as NEWOBJ + BUILD of their __dict__.
The expected tensor values are computed with NumPy (as_strided over the storage bytes).
"""
import collections
import json
import os
import pickle
import struct
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
expected = {}


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# --- plain data in every protocol ---------------------------------------------------------------

shared = [9]
PLAIN = {
    "none": None, "true": True, "false": False,
    "small": 7, "neg": -129, "u16": 40000, "i32": -2**31, "i64": 2**62, "min64": -2**63,
    "big": 2**100, "negbig": -2**70,
    "float": 1.5, "negzero": -0.0, "inf": float("inf"), "tiny": 5e-324,
    "str": "h\u00e9llo\n\\ \u20ac \U0001F600", "empty": "",
    "bytes": b"\x00\xffab", "bytearray": bytearray(b"xy"),
    "tuples": ((), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)),
    "list": [1, [2, [3]], "x"],
    "set": {3}, "frozenset": frozenset([4]),
    "nested": {"a": {"b": [None]}},
    "shared": [shared, shared],
    "od": collections.OrderedDict([("k", 1), ("j", 2)]),
}
for protocol in range(6):
    write(f"plain-p{protocol}.pkl", pickle.dumps(PLAIN, protocol=protocol))

cycle = []
cycle.append(cycle)
write("cycle-p2.pkl", pickle.dumps(cycle, protocol=2))


# --- hostile pickles that CPython's pickler writes ------------------------------------------------

class RunsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class RunsExec:
    def __reduce__(self):
        return (exec, ("import os",))


class RunsEval:
    def __reduce__(self):
        return (eval, ("1+1",))


write("hostile-system-p0.pkl", pickle.dumps(RunsSystem(), protocol=0))
write("hostile-system-p2.pkl", pickle.dumps(RunsSystem(), protocol=2))
write("hostile-exec-p2.pkl", pickle.dumps(RunsExec(), protocol=2))
write("hostile-exec-p4.pkl", pickle.dumps(RunsExec(), protocol=4))
write("hostile-eval-p5.pkl", pickle.dumps({"weights": [1.0], "x": RunsEval()}, protocol=5))


# --- torch stand-ins --------------------------------------------------------------------------

def module(name):
    m = types.ModuleType(name)
    sys.modules[name] = m
    return m


torch = module("torch")
torch_utils = module("torch._utils")


def stand_in(owner, name, kind="function"):
    if kind == "function":
        obj = lambda *args: None  # noqa: E731
        obj.__name__ = obj.__qualname__ = name
    else:
        obj = type(name, (), {})
    obj.__module__ = owner.__name__
    setattr(owner, name, obj)
    return obj


rebuild_tensor_v2 = stand_in(torch_utils, "_rebuild_tensor_v2")
rebuild_parameter = stand_in(torch_utils, "_rebuild_parameter")
STORAGE_TYPES = {name: stand_in(torch, name, "class") for name in
                 ["FloatStorage", "DoubleStorage", "HalfStorage", "LongStorage", "BoolStorage", "IntStorage"]}
NUMPY_TYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
               "BoolStorage": "|u1", "IntStorage": "<i4"}


class Storage:
    def __init__(self, type_name, key, values):
        self.type_name = type_name
        self.key = key
        self.array = np.asarray(values, dtype=NUMPY_TYPES[type_name])
        self.numel = self.array.size


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce_ex__(self, protocol):
        return (rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))

    def values(self):
        a = self.storage.array
        view = np.lib.stride_tricks.as_strided(a[self.offset:], self.size, [s * a.itemsize for s in self.stride])
        return view


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce_ex__(self, protocol):
        return (rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    """torch.save's pickler: storages become persistent ids (6 fields in the legacy format)."""
    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            pid = ("storage", STORAGE_TYPES[obj.type_name], obj.key, "cpu", obj.numel)
            return pid + (None,) if self.legacy else pid
        return None


def storages_of(obj, found):
    if isinstance(obj, Storage):
        found[obj.key] = obj
    elif isinstance(obj, Tensor):
        storages_of(obj.storage, found)
    elif isinstance(obj, Parameter):
        storages_of(obj.tensor, found)
    elif isinstance(obj, dict):
        for v in obj.values():
            storages_of(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            storages_of(v, found)
    elif hasattr(obj, "__dict__"):
        storages_of(vars(obj), found)
    return found


def dumps(obj, legacy=False):
    import io
    buffer = io.BytesIO()
    pickler = TorchPickler(buffer, protocol=2)
    pickler.legacy = legacy
    pickler.dump(obj)
    return buffer.getvalue()


def save_zip_layout(name, obj, storages=None):
    """data.pkl and data/<key> as torch's zip holds them, as plain files."""
    write(f"{name}/data.pkl", dumps(obj))
    for key, storage in (storages or storages_of(obj, {})).items():
        write(f"{name}/data/{key}", storage.array.tobytes())


def save_legacy(name, obj):
    out = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    out += pickle.dumps(1001, protocol=2)
    out += pickle.dumps({"protocol_version": 1001, "little_endian": True,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    out += dumps(obj, legacy=True)
    storages = storages_of(obj, {})
    keys = sorted(storages)
    out += pickle.dumps(keys, protocol=2)
    offsets = {}
    for key in keys:
        offsets[key] = len(out)  # where the storage's element count is
        out += struct.pack("<q", storages[key].numel) + storages[key].array.tobytes()
    offsets["end"] = len(out)
    expected.setdefault("legacy offsets", {})[name] = offsets
    write(name, out)


def record(name, tensors):
    expected[name] = {k: {"shape": list(t.size), "values": t.values().astype(np.float64).ravel().tolist()}
                      for k, t in tensors.items()}


# A state dict: contiguous, transposed, shared, offset, broadcast, scalar, half, bool.
weights = Storage("FloatStorage", "0", np.arange(6) / 4 - 0.5)
bias = Storage("FloatStorage", "1", [0.25, -1.0])
grid = Storage("FloatStorage", "2", np.arange(12))
steps = Storage("LongStorage", "3", [123456789012])
half = Storage("HalfStorage", "4", [1.5, -2.0, 65504.0])
mask = Storage("BoolStorage", "5", [True, False, True])
tensors = collections.OrderedDict([
    ("fc1.weight", Tensor(weights, 0, (2, 3), (3, 1))),
    ("fc1.bias", Tensor(bias, 0, (2,), (1,))),
    ("grid.t", Tensor(grid, 0, (4, 3), (1, 4))),
    ("grid.whole", Tensor(grid, 0, (3, 4), (4, 1))),
    ("grid.row1", Tensor(grid, 4, (4,), (1,))),
    ("grid.corner", Tensor(grid, 5, (2, 2), (4, 1))),
    ("bias.expanded", Tensor(bias, 0, (3, 2), (0, 1))),
    ("bn.num_batches_tracked", Tensor(steps, 0, (), ())),
    ("half", Tensor(half, 0, (3,), (1,))),
    ("mask", Tensor(mask, 0, (3,), (1,))),
])
state = collections.OrderedDict(tensors)
state._metadata = collections.OrderedDict([("", {"version": 1}), ("fc1", {"version": 1})])
save_zip_layout("state_dict", state)
record("state_dict", tensors)
save_legacy("state_dict_legacy.pt", state)
record("state_dict_legacy.pt", tensors)

# A checkpoint dict around a state dict.
save_zip_layout("checkpoint", {"model": collections.OrderedDict([("w", Tensor(bias, 0, (2,), (1,)))]), "epoch": 3})

# The storage's declared numel (6) disagrees with its bytes (5 floats).
save_zip_layout("numel_mismatch", collections.OrderedDict([("w", Tensor(weights, 0, (6,), (1,)))]),
                storages={"0": Storage("FloatStorage", "0", np.arange(5))})

# A view that runs past its storage: 2x3 with stride (3, 1) at offset 1 needs 7 of 6 elements.
save_zip_layout("out_of_range", collections.OrderedDict([("w", Tensor(weights, 1, (2, 3), (3, 1)))]))


# --- whole models: torch.nn stand-ins with torch 2.x's Module.__dict__ -----------------------------

def nn_class(file, name):
    owner = sys.modules.get(f"torch.nn.modules.{file}") or module(f"torch.nn.modules.{file}")
    cls = type(name, (), {})
    cls.__module__ = owner.__name__
    setattr(owner, name, cls)
    return cls


def nn_module(cls, parameters=(), buffers=(), modules=(), **attributes):
    m = cls.__new__(cls)
    d = m.__dict__
    d["training"] = False
    d["_parameters"] = dict(parameters)
    d["_buffers"] = dict(buffers)
    d["_non_persistent_buffers_set"] = set()
    for hooks in ["_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
                  "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                  "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                  "_load_state_dict_post_hooks"]:
        d[hooks] = collections.OrderedDict()
    d["_is_full_backward_hook"] = None
    d["_modules"] = dict(modules)
    d.update(attributes)
    return m


Linear = nn_class("linear", "Linear")
ReLU = nn_class("activation", "ReLU")
BatchNorm1d = nn_class("batchnorm", "BatchNorm1d")
Sequential = nn_class("container", "Sequential")
LSTM = nn_class("rnn", "LSTM")

w0 = Storage("FloatStorage", "0", np.arange(6) / 10)
b0 = Storage("FloatStorage", "1", [0.5, -0.5])
w2 = Storage("FloatStorage", "2", [2.0, 3.0])
rm = Storage("FloatStorage", "3", [0.0])
rv = Storage("FloatStorage", "4", [1.0])
nb = Storage("LongStorage", "5", [7])
model = nn_module(Sequential, modules=[
    ("0", nn_module(Linear, parameters=[("weight", Parameter(Tensor(w0, 0, (2, 3), (3, 1)))),
                                        ("bias", Parameter(Tensor(b0, 0, (2,), (1,))))],
                    in_features=3, out_features=2)),
    ("1", nn_module(ReLU, inplace=False)),
    ("2", nn_module(Linear, parameters=[("weight", Parameter(Tensor(w2, 0, (1, 2), (2, 1)))), ("bias", None)],
                    in_features=2, out_features=1)),
    ("3", nn_module(BatchNorm1d, buffers=[("running_mean", Tensor(rm, 0, (1,), (1,))),
                                          ("running_var", Tensor(rv, 0, (1,), (1,))),
                                          ("num_batches_tracked", Tensor(nb, 0, (), ()))],
                    num_features=1, eps=1e-5, momentum=0.1, affine=False, track_running_stats=True)),
])
save_zip_layout("model", model)
save_legacy("model_legacy.pt", model)
expected["model"] = {"0.weight": {"shape": [2, 3], "values": (np.arange(6) / 10).astype(np.float32).astype(np.float64).tolist()},
                     "0.bias": {"shape": [2], "values": [0.5, -0.5]},
                     "2.weight": {"shape": [1, 2], "values": [2.0, 3.0]},
                     "3.running_mean": {"shape": [1], "values": [0.0]},
                     "3.running_var": {"shape": [1], "values": [1.0]},
                     "3.num_batches_tracked": {"shape": [], "values": [7.0]}}

save_zip_layout("model_lstm", nn_module(Sequential, modules=[("0", nn_module(LSTM))]))


class Net:
    """A user's own module class: its module is __main__."""


net = nn_module(Net, modules=[("fc", nn_module(Linear, parameters=[("weight", Parameter(Tensor(w2, 0, (1, 2), (2, 1))))]))])
save_zip_layout("custom_net", net)

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote fixtures in", HERE)

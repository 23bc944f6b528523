#!/usr/bin/env python3
"""Writes the PyTorch fixtures in Fixtures/torch/: four small MNIST models trained briefly with
real PyTorch and saved in the containers PyTorch users produce (zip and legacy `torch.save`
state dicts, whole pickled models, safetensors, ONNX from the dynamo and the TorchScript
exporters), f16/bf16 and view-sharing state dicts, a whole pickled custom `__main__.Net` for the
refusal test, the inputs and reference outputs, the tensors as plain NumPy arrays, hand-built
hostile pickles in `hostile/`, `manifest.json` and README.md. The 1.2 M-parameter `mnist_cnn` is
written only as a zip and a legacy state dict, safetensors and dynamo ONNX, to keep the directory
small; the small models carry every other container.

    python3 -m pip install torch onnxscript onnx onnxruntime safetensors numpy
    python3 Fixtures/generate_torch.py        # run it as a script: the custom class is __main__.Net

Everything is seeded (torch.manual_seed, torch.Generator, one thread, deterministic algorithms)
and the data are fixed (the MNIST test set in ../shared/data/mnist/, or $NNM_MNIST_DIR). One run
writes everything to a temporary directory beside Fixtures/torch/, reads every file back (torch,
onnxruntime, safetensors, NumPy, and an independent pickle walker that never imports anything),
and only then replaces Fixtures/torch/. Do not edit Fixtures/torch/ by hand: README.md and both
manifests are generated too. Prints one summary line.

The hostile pickles are built byte by byte from the opcode constants of Python's `pickle`
module; they are never unpickled (only disassembled with pickletools, which executes nothing).
"""

import collections
import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import pickletools
import platform
import shutil
import struct
import sys
import tempfile
import time
import warnings
import zipfile

warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import onnxscript  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import safetensors.torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "torch")
MNIST_DIR = os.environ.get("NNM_MNIST_DIR", os.path.join(HERE, "..", "..", "shared", "data", "mnist"))

N_TRAIN = 8000            # the first 8,000 test images train the models
N_INPUTS = 100            # the last 100 test images are the fixture inputs
ONNX_ATOL = 1e-4          # onnxruntime vs torch, absolute, on the raw outputs
TORCHSCRIPT_OPSET = 17
HARMLESS_CMD = "echo NNM_HOSTILE_FIXTURE_EXECUTED"
HARMLESS_PY = "print('NNM_HOSTILE_FIXTURE_EXECUTED')"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    assert magic >> 8 == 0x08, f"{path}: not an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_mnist():
    images = read_idx(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    return images, labels


def to_x(images_u8):
    """The preprocessing every model expects: uint8 / 255 as float32, NCHW (N, 1, 28, 28)."""
    return torch.from_numpy(images_u8.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------

class MnistNet(nn.Module):
    """The MNIST example network of pytorch/examples (mnist/main.py), unchanged but for its class name
    (`Net` there): `__main__.Net` is the tiny custom class below. No file records this class's name
    (its whole-model pickle is not written, and the ONNX node metadata that named it is stripped)."""

    def __init__(self):
        super(MnistNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


class Net(nn.Module):
    """A tiny custom class, pickled whole as custom_net_whole.pth (`__main__.Net`): the file holds its
    name and tensors but not forward(), so an importer must refuse it."""

    def __init__(self):
        super(Net, self).__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return torch.tanh(self.fc(x)) * 2.0


CUSTOM_SEED = 5


def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def make_seq_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),            # 8x28x28
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),                          # 8x14x14
        nn.Conv2d(8, 16, 3, stride=2, bias=False),  # 16x6x6
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AvgPool2d(2),                          # 16x3x3
        nn.Flatten(),                             # 144
        nn.Linear(144, 32),
        nn.GELU(),
        nn.Dropout(0.2),
        nn.Linear(32, 10),
        nn.Softmax(dim=1),
    )


def make_lenet_avg():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),            # 6x28x28
        nn.Tanh(),
        nn.AvgPool2d(2),                          # 6x14x14
        nn.Conv2d(6, 16, 5),                      # 16x10x10
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2),                          # 16x5x5
        nn.Flatten(),                             # 400
        nn.Linear(400, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.LeakyReLU(0.1),
        nn.Linear(84, 10),
        nn.LogSoftmax(dim=1),
    )


# name, factory, what the module returns, training: (epochs, batch, lr), description of layers.
# small_containers=False (mnist_cnn, 4.8 MB of float32): no <model>_tensors.npz (its safetensors file is
# the tensor reference), no <model>_whole.pth, no <model>_torchscript.onnx. low_precision=True: also
# <model>_state_f16.pth and <model>_state_bf16.pth.
MODELS = [
    dict(name="mlp", make=make_mlp, output="logits", epochs=4, batch=64, lr=1e-3, seed=1,
         layers="Flatten, Linear(784,128), ReLU, Linear(128,10) -> logits"),
    dict(name="mnist_cnn", make=MnistNet, output="log_probs", epochs=2, batch=64, lr=1e-3, seed=2,
         small_containers=False,
         layers="pytorch/examples MNIST Net: conv1 Conv2d(1,32,3,1), relu, conv2 Conv2d(32,64,3,1), relu, "
                "max_pool2d(2), dropout1(0.25), flatten(x,1), fc1 Linear(9216,128), relu, dropout2(0.5), "
                "fc2 Linear(128,10), log_softmax(dim=1) (the ops between the submodules live in forward(), "
                "not in any file)"),
    dict(name="seq_cnn", make=make_seq_cnn, output="probs", epochs=4, batch=64, lr=2e-3, seed=3,
         layers="Conv2d(1,8,3,padding=1), BatchNorm2d(8), ReLU, MaxPool2d(2), Conv2d(8,16,3,stride=2,bias=False), "
                "BatchNorm2d(16), ReLU, AvgPool2d(2), Flatten, Linear(144,32), GELU, Dropout(0.2), Linear(32,10), "
                "Softmax(dim=1)"),
    dict(name="lenet_avg", make=make_lenet_avg, output="log_probs", epochs=4, batch=64, lr=2e-3, seed=4,
         low_precision=True,
         layers="Conv2d(1,6,5,padding=2), Tanh, AvgPool2d(2), Conv2d(6,16,5), LeakyReLU(0.1), AvgPool2d(2), "
                "Flatten, Linear(400,120), Tanh, Linear(120,84), LeakyReLU(0.1), Linear(84,10), LogSoftmax(dim=1)"),
]

PROBS_RULE = {
    "logits": "softmax(output) computed in float64",
    "log_probs": "exp(output) computed in float64",
    "probs": "the output itself, as float64",
}


def probs_from_output(out, kind):
    o = out.double()
    if kind == "logits":
        return torch.softmax(o, dim=1)
    if kind == "log_probs":
        return torch.exp(o)
    return o


def train(spec, x_train, y_train):
    torch.manual_seed(spec["seed"])
    model = spec["make"]()
    # A model ending in Softmax trains through the logits (all layers but the last).
    trainable = model[:-1] if spec["output"] == "probs" else model
    loss_fn = F.cross_entropy if spec["output"] in ("logits", "probs") else F.nll_loss
    opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    gen = torch.Generator().manual_seed(1000 + spec["seed"])
    model.train()
    n = x_train.shape[0]
    t0 = time.time()
    for _ in range(spec["epochs"]):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, spec["batch"]):
            idx = perm[i:i + spec["batch"]]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(trainable(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
    opt.zero_grad(set_to_none=True)
    model.eval()
    return model, time.time() - t0


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def jsonable(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(jsonable(x) for x in v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return repr(v)


def first_line(e):
    s = f"{type(e).__name__}: {e}"
    return s.strip().splitlines()[0][:300]


# ------------------------------------------------------------------------------------------------
# An independent reader of torch pickles: records what the pickle says without importing anything.
# Only used on files this script wrote with torch (never on hostile/).
# ------------------------------------------------------------------------------------------------

class _Stub:
    _global = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args          # NEWOBJ calls only __new__; REDUCE calls __new__ and __init__
        obj.kwargs = kwargs
        obj.state = None
        return obj

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state


class _Pid:
    def __init__(self, pid):
        self.pid = pid


class StubUnpickler(pickle.Unpickler):
    """find_class returns inert stand-ins (real OrderedDict/set only); persistent ids are recorded."""

    def __init__(self, f):
        super().__init__(f)
        self.classes = {}
        self.pids = []

    def find_class(self, module, name):
        dotted = f"{module}.{name}"
        if dotted == "collections.OrderedDict":
            return collections.OrderedDict
        if dotted in ("__builtin__.set", "builtins.set"):
            return set
        if dotted not in self.classes:
            self.classes[dotted] = type(name, (_Stub,), {"_global": dotted})
        return self.classes[dotted]

    def persistent_load(self, pid):
        self.pids.append(pid)
        return _Pid(pid)


def is_call(obj, dotted):
    return isinstance(obj, _Stub) and obj._global == dotted


STORAGE_ITEMSIZE = {
    "torch.FloatStorage": (4, "<f4"), "torch.DoubleStorage": (8, "<f8"), "torch.HalfStorage": (2, "<f2"),
    "torch.BFloat16Storage": (2, "<u2"), "torch.LongStorage": (8, "<i8"), "torch.IntStorage": (4, "<i4"),
    "torch.ByteStorage": (1, "u1"), "torch.BoolStorage": (1, "u1"),
}


def tensor_record(t):
    """A _rebuild_tensor_v2 call (or _rebuild_parameter around one) as the pickle describes it."""
    param = False
    requires_grad_param = None
    if is_call(t, "torch._utils._rebuild_parameter"):
        param = True
        requires_grad_param = t.args[1]
        t = t.args[0]
    assert is_call(t, "torch._utils._rebuild_tensor_v2"), t
    pid = t.args[0].pid
    rec = dict(
        rebuild="torch._utils._rebuild_tensor_v2", n_args=len(t.args),
        storage_type=pid[1]._global, storage_key=pid[2], location=pid[3], storage_numel=pid[4],
        storage_offset=t.args[1], size=list(t.args[2]), stride=list(t.args[3]), requires_grad=t.args[4],
        backward_hooks=type(t.args[5]).__name__ + ("(empty)" if len(t.args[5]) == 0 else "(NOT EMPTY)"),
        pid_length=len(pid),
    )
    if len(pid) > 5:
        rec["view_metadata"] = pid[5]
    if param:
        rec["wrapped_in"] = "torch._utils._rebuild_parameter"
        rec["parameter_requires_grad"] = requires_grad_param
    return rec


def strided_array(raw, rec):
    """Rebuilds a tensor from its storage bytes exactly as the pickle says (offset/size/stride)."""
    itemsize, dt = STORAGE_ITEMSIZE[rec["storage_type"]]
    assert len(raw) == rec["storage_numel"] * itemsize, "storage size disagrees with the pid"
    base = np.frombuffer(raw, dtype=dt)
    size, stride, off = rec["size"], rec["stride"], rec["storage_offset"]
    if size:
        last = off + sum((s - 1) * st for s, st in zip(size, stride))
        assert 0 <= off and last < len(base), "tensor outside its storage"
    arr = np.lib.stride_tricks.as_strided(base[off:], shape=tuple(size),
                                          strides=tuple(st * itemsize for st in stride))
    return np.array(arr)


def opcode_summary(data_or_file):
    counts = collections.Counter()
    globals_seen = []
    protocol = None
    for op, arg, _pos in pickletools.genops(data_or_file):
        counts[op.name] += 1
        if op.name == "PROTO":
            protocol = arg
        if op.name in ("GLOBAL", "INST"):
            dotted = arg.replace(" ", ".")
            if dotted not in globals_seen:
                globals_seen.append(dotted)
        if op.name == "STACK_GLOBAL" and "<STACK_GLOBAL>" not in globals_seen:
            globals_seen.append("<STACK_GLOBAL>")
    return dict(protocol=protocol, globals=globals_seen, opcodes=dict(sorted(counts.items())))


def zip_layout(path):
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        prefix = names[0].split("/")[0]
        layout = []
        with open(path, "rb") as f:
            for i in infos:
                f.seek(i.header_offset + 26)
                n, m = struct.unpack("<HH", f.read(4))
                data_offset = i.header_offset + 30 + n + m
                layout.append(dict(name=i.filename, bytes=i.file_size, compress_type=i.compress_type,
                                   data_offset=data_offset, data_offset_mod_64=data_offset % 64))
        small = {n: z.read(n).decode("latin-1") for n in names
                 if n.split("/", 1)[1] in ("byteorder", "version", ".format_version", ".storage_alignment",
                                           ".data/serialization_id")}
    return prefix, layout, small


def read_zip_checkpoint(path):
    """Parses a zip-format torch.save file with the stub unpickler; returns (summary, root, arrays)."""
    prefix, layout, small = zip_layout(path)
    with zipfile.ZipFile(path) as z:
        pkl = z.read(f"{prefix}/data.pkl")
        up = StubUnpickler(io.BytesIO(pkl))
        root = up.load()
        storages = {n.split("/data/", 1)[1]: z.read(n) for n in z.namelist() if "/data/" in n}
    summary = dict(container="torch-zip", archive_prefix=prefix, records=layout, small_records=small,
                   pickle=opcode_summary(pkl),
                   persistent_id_shape="('storage', <torch.XStorage global>, key:str, location:str, numel:int)")
    return summary, root, storages, up


def read_legacy_checkpoint(path):
    with open(path, "rb") as fh:
        data = fh.read()
    f = io.BytesIO(data)
    parts = []
    values = []
    for label in ("magic_number", "protocol_version", "sys_info", "main", "storage_keys"):
        start = f.tell()
        up = StubUnpickler(f)
        v = up.load()
        values.append((v, up))
        parts.append(dict(part=label, offset=start, bytes=f.tell() - start,
                          pickle=opcode_summary(io.BytesIO(data[start:f.tell()]))))
    magic, proto, sys_info, (root, up_main), keys = (values[0][0], values[1][0], values[2][0], values[3],
                                                     values[4][0])
    assert magic == 0x1950a86a20f9469cfc6c and proto == 1001
    numel_of = {}
    type_of = {}
    for pid in up_main.pids:
        numel_of[pid[2]] = pid[4]
        type_of[pid[2]] = pid[1]._global
    pos = f.tell()
    storages = {}
    blocks = []
    for k in keys:
        n = struct.unpack("<q", data[pos:pos + 8])[0]
        itemsize = STORAGE_ITEMSIZE[type_of[k]][0]
        assert n == numel_of[k]
        storages[k] = data[pos + 8:pos + 8 + n * itemsize]
        blocks.append(dict(key=k, offset=pos, numel=n, bytes=n * itemsize))
        pos += 8 + n * itemsize
    assert pos == len(data), "trailing bytes in legacy file"
    summary = dict(container="torch-legacy", parts=parts, sys_info=jsonable(sys_info), storage_keys=keys,
                   storage_blocks=blocks,
                   persistent_id_shape="('storage', <torch.XStorage global>, key:str (the storage's memory "
                                       "address in decimal), location:str, numel:int, view_metadata:None)",
                   pickle=parts[3]["pickle"])
    return summary, root, storages, up_main


def state_dict_records(root, storages):
    assert isinstance(root, dict)
    tensors = collections.OrderedDict()
    arrays = {}
    for k, v in root.items():
        rec = tensor_record(v)
        tensors[k] = rec
        arrays[k] = strided_array(storages[rec["storage_key"]], rec)
    meta = getattr(root, "_metadata", None)
    return tensors, arrays, meta


def module_tree(obj, path=""):
    """Walks a whole-model pickle (stubs) into plain dicts: class, attributes, hyper-parameters."""
    assert isinstance(obj, _Stub) and isinstance(obj.state, dict), obj
    st = obj.state
    node = dict(path=path or "<root>", cls=obj._global, newobj_args=jsonable(list(obj.args)),
                attributes=list(st.keys()))
    node["plain_attributes"] = {k: jsonable(v) for k, v in st.items()
                                if k not in ("_parameters", "_buffers", "_modules")}
    node["parameters"] = {n: (None if p is None else {kk: tensor_record(p)[kk] for kk in
                                                     ("size", "stride", "storage_key", "storage_type")})
                          for n, p in st["_parameters"].items()}
    node["parameter_wrapper"] = sorted({p._global for p in st["_parameters"].values() if p is not None})
    node["buffers"] = {n: (None if b is None else {kk: tensor_record(b)[kk] for kk in
                                                  ("size", "stride", "storage_key", "storage_type")})
                       for n, b in st["_buffers"].items()}
    node["other_attribute_types"] = {k: (type(v).__name__ if not isinstance(v, _Stub) else v._global)
                                     for k, v in st.items()
                                     if k.startswith("_") and k not in ("_parameters", "_buffers", "_modules")}
    children = []
    for name, child in st["_modules"].items():
        children.append(module_tree(child, f"{path}.{name}" if path else name))
    node["children"] = children
    return node


def flatten_tree(node):
    out = [node]
    for c in node["children"]:
        out.extend(flatten_tree(c))
    return out


# ------------------------------------------------------------------------------------------------
# ONNX
# ------------------------------------------------------------------------------------------------

def onnx_attr_value(a):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, onnx.TensorProto):
        return dict(tensor_dims=list(v.dims), data_type=onnx.TensorProto.DataType.Name(v.data_type))
    if isinstance(v, (list, tuple)):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    return v


def value_info(vi):
    t = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return dict(name=vi.name, elem_type=onnx.TensorProto.DataType.Name(t.elem_type), shape=dims)


def onnx_summary(path, state_dict):
    m = onnx.load(path, load_external_data=False)
    inits = []
    for t in m.graph.initializer:
        ext = {e.key: e.value for e in t.external_data}
        inits.append(dict(name=t.name, dims=list(t.dims), data_type=onnx.TensorProto.DataType.Name(t.data_type),
                          external=t.data_location == onnx.TensorProto.EXTERNAL, external_data=ext))
    full = onnx.load(path)  # with external data
    for rec, t in zip(inits, full.graph.initializer):
        arr = onnx.numpy_helper.to_array(t)
        if t.name in state_dict:
            sd = state_dict[t.name].detach().numpy()
            rec["same_name_in_state_dict"] = True
            rec["equals_state_dict_tensor"] = bool(sd.shape == arr.shape and np.array_equal(sd, arr))
        else:
            rec["same_name_in_state_dict"] = False
    nodes = []
    for n in m.graph.node:
        nodes.append(dict(op_type=n.op_type, domain=n.domain, name=n.name, inputs=list(n.input),
                          outputs=list(n.output), attributes={a.name: onnx_attr_value(a) for a in n.attribute}))
    meta_keys = sorted({p.key for n in m.graph.node for p in n.metadata_props})
    return dict(
        ir_version=m.ir_version,
        opset_import={(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        producer=f"{m.producer_name} {m.producer_version}",
        inputs=[value_info(v) for v in m.graph.input],
        outputs=[value_info(v) for v in m.graph.output],
        op_types=[n.op_type for n in m.graph.node],
        op_type_counts=dict(collections.Counter(n.op_type for n in m.graph.node)),
        initializers=inits,
        nodes=nodes,
        model_metadata_props={p.key: p.value for p in m.metadata_props},
        node_metadata_keys=meta_keys,
        graph_metadata_keys=[p.key for p in m.graph.metadata_props],
        input_output_value_info_metadata_keys=sorted({p.key for v in list(m.graph.input) + list(m.graph.output) +
                                                      list(m.graph.value_info) for p in v.metadata_props}),
        initializer_metadata_keys=sorted({p.key for t in m.graph.initializer for p in t.metadata_props}),
        functions=[f.name for f in m.functions],
        value_info_count=len(m.graph.value_info),
    )


def run_onnx(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = inp.shape[0]
    if isinstance(batch, int):
        outs = [sess.run(None, {inp.name: x[i:i + batch]})[0] for i in range(0, x.shape[0], batch)]
        return np.concatenate(outs, axis=0), batch
    return sess.run(None, {inp.name: x})[0], batch


def path_markers():
    """Strings that would tie a file to this machine or to where the repository lives."""
    marks = {HERE, os.path.dirname(HERE), os.path.dirname(os.path.abspath(torch.__file__)), sys.prefix,
             sys.exec_prefix, os.path.expanduser("~"), "site-packages", "generate_torch.py"}
    return sorted(m for m in marks if m and m != "/")


def _all_graphs(m):
    """The main graph and every subgraph (If/Loop/Scan bodies), in model functions too."""
    stack = [m.graph] + [f for f in m.functions]
    while stack:
        g = stack.pop()
        yield g
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    stack.append(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(a.graphs)


def strip_onnx_paths(path):
    """Removes the dynamo exporter's per-node metadata_props (its stack traces name the absolute paths
    of torch's and this script's source files) and any doc_string that holds a path, then re-saves the
    .onnx with the onnx API. The model is loaded without its external data and saved without
    converting anything, so <model>.onnx.data is not rewritten: every initializer keeps exactly the
    location/offset/length torch gave it (checked, with the data file's sha256)."""
    m = onnx.load(path, load_external_data=False)
    ext_before = [(t.name, t.data_location, [(e.key, e.value) for e in t.external_data]) for t in m.graph.initializer]
    data_files = sorted({e.value for t in m.graph.initializer for e in t.external_data if e.key == "location"})
    data_sha = {d: sha256(os.path.join(os.path.dirname(path), d)) for d in data_files}
    marks = path_markers()

    def has_path(text):
        return any(mk in text for mk in marks) or 'File "' in text

    keys = collections.Counter()
    path_keys = set()
    n_nodes = 0
    cleared_docs = []
    for g in _all_graphs(m):
        if has_path(g.doc_string):
            cleared_docs.append(f"graph {g.name}")
            g.doc_string = ""
        for n in g.node:
            if len(n.metadata_props):
                n_nodes += 1
                keys.update(p.key for p in n.metadata_props)
                path_keys.update(p.key for p in n.metadata_props if has_path(p.value))
                del n.metadata_props[:]
            if has_path(n.doc_string):
                cleared_docs.append(f"node {n.name}")
                n.doc_string = ""
    if has_path(m.doc_string):
        cleared_docs.append("model")
        m.doc_string = ""
    onnx.save(m, path)

    m2 = onnx.load(path, load_external_data=False)
    ext_after = [(t.name, t.data_location, [(e.key, e.value) for e in t.external_data]) for t in m2.graph.initializer]
    assert ext_after == ext_before, f"{path}: external data references changed"
    for d, h in data_sha.items():
        assert sha256(os.path.join(os.path.dirname(path), d)) == h, f"{path}: {d} was rewritten"
    assert all(len(n.metadata_props) == 0 for g in _all_graphs(m2) for n in g.node)
    with open(path, "rb") as f:
        raw = f.read()
    for mk in marks + ['File "']:
        assert mk.encode() not in raw, f"{path} still contains {mk!r}"
    return dict(nodes_stripped=n_nodes, node_metadata_keys_removed=dict(sorted(keys.items())),
                keys_whose_values_held_paths=sorted(path_keys),
                doc_strings_cleared=cleared_docs, external_data_files_unchanged=data_files)


# ------------------------------------------------------------------------------------------------
# Hostile pickles (bytes by hand; never unpickled)
# ------------------------------------------------------------------------------------------------

P = pickle


def op_u(s):
    b = s.encode("utf-8")
    return P.BINUNICODE + struct.pack("<I", len(b)) + b


def op_su(s):
    b = s.encode("utf-8")
    assert len(b) < 256
    return P.SHORT_BINUNICODE + bytes([len(b)]) + b


def op_int(n):
    if 0 <= n < 256:
        return P.BININT1 + bytes([n])
    if 0 <= n < 65536:
        return P.BININT2 + struct.pack("<H", n)
    if -2 ** 31 <= n < 2 ** 31:
        return P.BININT + struct.pack("<i", n)
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return P.LONG1 + bytes([len(b)]) + b


def op_global(module, name):
    return P.GLOBAL + f"{module}\n{name}\n".encode()


def op_tuple(*items):
    body = b"".join(items)
    if len(items) == 0:
        return P.EMPTY_TUPLE
    if len(items) <= 3:
        return body + {1: P.TUPLE1, 2: P.TUPLE2, 3: P.TUPLE3}[len(items)]
    return P.MARK + body + P.TUPLE


def op_odict():
    return op_global("collections", "OrderedDict") + P.EMPTY_TUPLE + P.REDUCE


def op_tensor(key, numel, size, stride, offset=0, storage="FloatStorage"):
    pid = op_tuple(op_u("storage"), op_global("torch", storage), op_u(key), op_u("cpu"), op_int(numel))
    args = P.MARK + pid + P.BINPERSID + op_int(offset) + op_tuple(*[op_int(s) for s in size]) + \
        op_tuple(*[op_int(s) for s in stride]) + P.NEWFALSE + op_odict() + P.TUPLE
    return op_global("torch._utils", "_rebuild_tensor_v2") + args + P.REDUCE


def op_state_dict(items, proto=2):
    body = b"".join(op_u(k) + v for k, v in items)
    return P.PROTO + bytes([proto]) + op_odict() + P.MARK + body + P.SETITEMS + P.STOP


W_BYTES = np.arange(6, dtype="<f4").tobytes()        # fc.weight (2, 3)
B_BYTES = np.array([0.5, -0.5], dtype="<f4").tobytes()  # fc.bias (2,)


def benign_items():
    return [("fc.weight", op_tensor("0", 6, (2, 3), (3, 1))), ("fc.bias", op_tensor("1", 2, (2,), (1,)))]


def benign_storages():
    return [("0", W_BYTES), ("1", B_BYTES)]


def legacy_header():
    magic = P.PROTO + b"\x02" + op_int(0x1950a86a20f9469cfc6c) + P.STOP
    proto = P.PROTO + b"\x02" + op_int(1001) + P.STOP
    sizes = P.EMPTY_DICT + P.MARK + op_u("short") + op_int(2) + op_u("int") + op_int(4) + op_u("long") + \
        op_int(4) + P.SETITEMS
    sys_info = P.PROTO + b"\x02" + P.EMPTY_DICT + P.MARK + op_u("protocol_version") + op_int(1001) + \
        op_u("little_endian") + P.NEWTRUE + op_u("type_sizes") + sizes + P.SETITEMS + P.STOP
    return magic + proto + sys_info


def hostile_cases():
    """(file, container, case, attack, global, keyword, any_of, expect, pickle bytes, storages, extra, note)."""
    cases = []

    def add(file, case, attack, glob, keyword, any_of, pkl, *, container="torch-zip", storages=None,
            extra=(), expect="error", note="", dis_ok=True, include_pkl=True):
        cases.append(dict(file=file, container=container, case=case, attack_opcodes=attack,
                          attack_global=glob, error_keyword=keyword, error_keywords_any=any_of,
                          expect=expect, pkl=pkl, storages=storages if storages is not None else [],
                          extra=list(extra), note=note, dis_ok=dis_ok, include_pkl=include_pkl))

    cmd_args = op_tuple(op_u(HARMLESS_CMD))
    py_args = op_tuple(op_u(HARMLESS_PY))

    # --- code execution through each opcode that can call or construct something -------------
    add("global_reduce_os_system.pth", "os.system reached by GLOBAL + REDUCE, as the value of 'fc.bias' "
        "inside an otherwise normal state dict", ["GLOBAL", "REDUCE"], "os.system", "os.system", ["os.system"],
        op_state_dict([("fc.weight", op_tensor("0", 6, (2, 3), (3, 1))),
                       ("fc.bias", op_global("os", "system") + cmd_args + P.REDUCE)]),
        storages=[("0", W_BYTES)])
    add("stack_global_builtins_exec.pth", "builtins.exec reached by STACK_GLOBAL (protocol 4 strings) + "
        "REDUCE, as a state-dict value", ["STACK_GLOBAL", "REDUCE"], "builtins.exec", "builtins.exec",
        ["builtins.exec", "STACK_GLOBAL"],
        op_state_dict([("fc.weight", op_su("builtins") + op_su("exec") + P.STACK_GLOBAL + py_args + P.REDUCE)],
                      proto=4))
    add("reduce_builtins_eval.pth", "builtins.eval called by REDUCE as the whole pickle",
        ["GLOBAL", "REDUCE"], "builtins.eval", "builtins.eval", ["builtins.eval"],
        P.PROTO + b"\x02" + op_global("builtins", "eval") + py_args + P.REDUCE + P.STOP)
    add("global_builtin_py2_eval.pth", "eval under its Python 2 module name __builtin__ (torch's own files "
        "use '__builtin__ set', so a reader maps __builtin__ to builtins and must still refuse eval)",
        ["GLOBAL", "REDUCE"], "__builtin__.eval", "eval", ["__builtin__.eval", "builtins.eval"],
        P.PROTO + b"\x02" + op_global("__builtin__", "eval") + py_args + P.REDUCE + P.STOP)
    add("global_posix_system.pth", "posix.system (os.system's real home on Linux) by GLOBAL + REDUCE inside "
        "a state dict", ["GLOBAL", "REDUCE"], "posix.system", "posix.system", ["posix.system"],
        op_state_dict([("fc.weight", op_tensor("0", 6, (2, 3), (3, 1))),
                       ("fc.bias", op_global("posix", "system") + cmd_args + P.REDUCE)]),
        storages=[("0", W_BYTES)])
    add("inst_os_system.pth", "os.system called by INST (protocol 0: the module and name are text lines "
        "inside the INST opcode, not a GLOBAL)", ["INST"], "os.system", "os.system", ["os.system", "INST"],
        P.PROTO + b"\x02" + P.MARK + op_u(HARMLESS_CMD) + P.INST + b"os\nsystem\n" + P.STOP)
    add("obj_os_system.pth", "os.system called by OBJ (MARK, callable, args, OBJ)", ["GLOBAL", "OBJ"],
        "os.system", "os.system", ["os.system", "OBJ"],
        P.PROTO + b"\x02" + P.MARK + op_global("os", "system") + op_u(HARMLESS_CMD) + P.OBJ + P.STOP)
    add("newobj_os_system.pth", "os.system given to NEWOBJ (cls.__new__(cls, *args)); the global is what "
        "must be refused, whatever opcode uses it", ["GLOBAL", "NEWOBJ"], "os.system", "os.system",
        ["os.system", "NEWOBJ"],
        P.PROTO + b"\x02" + op_global("os", "system") + cmd_args + P.NEWOBJ + P.STOP)
    add("newobj_subprocess_popen.pth", "subprocess.Popen given to NEWOBJ inside a state dict",
        ["GLOBAL", "NEWOBJ"], "subprocess.Popen", "subprocess.Popen", ["subprocess.Popen"],
        op_state_dict([("fc.weight", op_global("subprocess", "Popen") +
                        op_tuple(P.EMPTY_LIST + P.MARK + op_u("echo") + op_u("NNM_HOSTILE_FIXTURE_EXECUTED") +
                                 P.APPENDS) + P.NEWOBJ)]))
    add("newobj_ex_posix_system.pth", "posix.system given to NEWOBJ_EX (protocol 4: class, args tuple, "
        "kwargs dict)", ["GLOBAL", "NEWOBJ_EX"], "posix.system", "posix.system", ["posix.system", "NEWOBJ_EX"],
        P.PROTO + b"\x04" + op_global("posix", "system") + cmd_args + P.EMPTY_DICT + P.NEWOBJ_EX + P.STOP)
    add("build_setstate_functools_partial.pth", "a BUILD whose state would run functools.partial.__setstate__ "
        "(a disallowed class): partial(print) is rebuilt as partial(os.system, cmd) and then called by "
        "REDUCE", ["GLOBAL", "NEWOBJ", "BUILD", "REDUCE"], "functools.partial", "functools.partial",
        ["functools.partial", "builtins.print", "os.system", "BUILD"],
        P.PROTO + b"\x02" + op_global("functools", "partial") + op_tuple(op_global("builtins", "print")) +
        P.NEWOBJ + P.MARK + op_global("os", "system") + cmd_args + P.EMPTY_DICT + P.NONE + P.TUPLE +
        P.BUILD + P.EMPTY_TUPLE + P.REDUCE + P.STOP)
    add("global_getattr_import.pth", "builtins.getattr(builtins.__import__('os'), 'system')(cmd): the "
        "classic gadget chain built only from builtins", ["GLOBAL", "REDUCE"], "builtins.getattr",
        "builtins.getattr", ["builtins.getattr", "builtins.__import__"],
        P.PROTO + b"\x02" + op_global("builtins", "getattr") +
        op_tuple(op_global("builtins", "__import__") + op_tuple(op_u("os")) + P.REDUCE, op_u("system")) +
        P.REDUCE + cmd_args + P.REDUCE + P.STOP)
    add("global_torch_hub_load.pth", "torch.hub.load: a torch.* global that is not a tensor rebuild "
        "function (an allow-list by prefix 'torch.' would let it through)", ["GLOBAL", "REDUCE"],
        "torch.hub.load", "torch.hub.load", ["torch.hub.load"],
        op_state_dict([("fc.weight", op_global("torch.hub", "load") +
                        op_tuple(op_u("attacker/repo"), op_u("model")) + P.REDUCE)]))

    # --- memo --------------------------------------------------------------------------------
    add("memo_long_binget_huge.pth", "LONG_BINGET 0xFFFFFFFF: a memo index far past anything stored",
        ["LONG_BINGET"], None, "memo", ["memo"],
        P.PROTO + b"\x02" + op_odict() + P.BINPUT + b"\x00" + P.MARK + op_u("fc.weight") + P.LONG_BINGET +
        struct.pack("<I", 0xFFFFFFFF) + P.SETITEMS + P.STOP, dis_ok=False)
    add("memo_binget_unset.pth", "BINGET 200 when only memo slot 0 was stored", ["BINGET"], None, "memo",
        ["memo"],
        P.PROTO + b"\x02" + op_odict() + P.BINPUT + b"\x00" + P.MARK + op_u("fc.weight") + P.BINGET + b"\xc8" +
        P.SETITEMS + P.STOP, dis_ok=False)
    add("memo_long_binput_huge.pth", "LONG_BINPUT 0xFFFFFFFF on the state dict, then LONG_BINGET of the same "
        "slot; otherwise a valid state dict. Python's dict memo accepts it; a reader with a dense memo array "
        "must not allocate 2^32 slots (torch's writer numbers memo slots 0, 1, 2, ... in order)",
        ["LONG_BINPUT"], None, "memo", ["memo"],
        P.PROTO + b"\x02" + op_odict() + P.LONG_BINPUT + struct.pack("<I", 0xFFFFFFFF) + P.POP +
        P.LONG_BINGET + struct.pack("<I", 0xFFFFFFFF) + P.MARK +
        b"".join(op_u(k) + v for k, v in benign_items()) + P.SETITEMS + P.STOP,
        storages=benign_storages(), expect="error_or_load",
        note="if loaded, it is the benign 2-tensor state dict (fc.weight = arange(6) as (2,3), "
             "fc.bias = [0.5, -0.5]); memory use must stay small")
    add("memo_put_text_huge.pth", "PUT (protocol 0, decimal text) with index 18446744073709551616 (2^64, "
        "past any u64)", ["PUT"], None, "memo", ["memo", "index"],
        P.PROTO + b"\x02" + op_odict() + P.PUT + b"18446744073709551616\n" + P.STOP)

    # --- nesting -----------------------------------------------------------------------------
    n = 100_000
    add("deep_list_nesting.pth", f"{n:,} EMPTY_LIST then {n - 1:,} APPEND: a list nested {n:,} deep "
        "(a recursive reader or printer overflows its stack)", ["EMPTY_LIST", "APPEND"], None, "nesting",
        ["nesting", "depth", "stack"],
        P.PROTO + b"\x02" + P.EMPTY_LIST * n + P.APPEND * (n - 1) + P.STOP)
    add("deep_mark_nesting.pth", f"{n:,} MARK then {n:,} TUPLE: a tuple nested {n:,} deep and a mark stack "
        f"{n:,} high", ["MARK", "TUPLE"], None, "nesting", ["nesting", "depth", "stack", "mark"],
        P.PROTO + b"\x02" + P.MARK * n + P.TUPLE * n + P.STOP)

    # --- storages and tensors ----------------------------------------------------------------
    add("storage_numel_mismatch.pth", "the persistent id declares 100 float32 elements, but archive/data/0 "
        "holds 24 bytes (6 elements)", ["BINPERSID"], None, "storage", ["storage", "size", "bytes", "numel"],
        op_state_dict([("fc.weight", op_tensor("0", 100, (2, 3), (3, 1)))]), storages=[("0", W_BYTES)])
    add("tensor_out_of_bounds.pth", "storage of 6 elements (consistent with data/0), tensor size (4, 4) "
        "stride (4, 1) reads 16", ["REDUCE"], "torch._utils._rebuild_tensor_v2", "bounds",
        ["bounds", "storage", "size", "range"],
        op_state_dict([("fc.weight", op_tensor("0", 6, (4, 4), (4, 1)))]), storages=[("0", W_BYTES)])
    add("tensor_size_overflow.pth", "tensor size (2^40, 2^40): the element count overflows 64 bits "
        "(2^80)", ["REDUCE"], "torch._utils._rebuild_tensor_v2", "size",
        ["size", "overflow", "bounds", "large"],
        op_state_dict([("fc.weight", op_tensor("0", 6, (2 ** 40, 2 ** 40), (1, 1)))]), storages=[("0", W_BYTES)])
    add("tensor_negative_stride.pth", "tensor size (2, 3) stride (-3, 1) offset 3 (torch never writes a "
        "negative stride)", ["REDUCE"], "torch._utils._rebuild_tensor_v2", "stride",
        ["stride", "bounds"],
        op_state_dict([("fc.weight", op_tensor("0", 6, (2, 3), (-3, 1), offset=3))]), storages=[("0", W_BYTES)])
    add("duplicate_key.pth", "the key 'fc.weight' set by two SETITEMS (a dict would silently keep the "
        "second)", ["SETITEMS"], None, "duplicate", ["duplicate"],
        P.PROTO + b"\x02" + op_odict() + P.MARK + op_u("fc.weight") + op_tensor("0", 6, (2, 3), (3, 1)) +
        P.SETITEMS + P.MARK + op_u("fc.weight") + op_tensor("1", 2, (2,), (1,)) + P.SETITEMS + P.STOP,
        storages=benign_storages())
    add("persid_missing_storage.pth", "a persistent id names storage key '7'; the archive holds only "
        "data/0 and data/1", ["BINPERSID"], None, "storage", ["storage", "data/7", "missing", "not found"],
        op_state_dict([("fc.weight", op_tensor("7", 6, (2, 3), (3, 1))),
                       ("fc.bias", op_tensor("1", 2, (2,), (1,)))]), storages=benign_storages())
    trav = "../../../../../../tmp/nnm_hostile_fixture"
    add("storage_key_path_traversal.pth", f"storage key '{trav}' (the zip also has a member "
        f"archive/data/{trav}, so a reader that only looks names up in the zip finds it)", ["BINPERSID"],
        None, "..", ["..", "storage key", "path", "invalid"],
        op_state_dict([("fc.weight", op_tensor(trav, 6, (2, 3), (3, 1)))]),
        storages=[("0", W_BYTES), (trav, W_BYTES)])
    add("storage_key_absolute.pth", "storage key '/etc/passwd'", ["BINPERSID"], None, "storage key",
        ["storage key", "path", "invalid", "/etc/passwd"],
        op_state_dict([("fc.weight", op_tensor("/etc/passwd", 6, (2, 3), (3, 1)))]), storages=[("0", W_BYTES)])

    # --- broken containers and byte streams --------------------------------------------------
    add("missing_data_pkl.pth", "a torch-style zip without archive/data.pkl (byteorder, version and the "
        "storages are there)", [], None, "data.pkl", ["data.pkl"],
        op_state_dict(benign_items()), storages=benign_storages(), include_pkl=False)
    whole = op_state_dict(benign_items())
    cut = whole.index(op_u("fc.bias")) + 3   # inside the 4-byte length of BINUNICODE 'fc.bias'
    add("truncated_mid_opcode.pth", f"data.pkl cut after {cut} of its {len(whole)} bytes, inside the "
        "4-byte length of a BINUNICODE", ["BINUNICODE"], None, "truncated",
        ["truncated", "end of", "eof", "unexpected end"], whole[:cut], storages=benign_storages(), dis_ok=False)
    add("unknown_opcode.pth", "byte 0xFF where an opcode is expected (no pickle protocol defines it)",
        ["0xFF"], None, "opcode", ["opcode"],
        P.PROTO + b"\x02" + op_odict() + b"\xff" + P.STOP, dis_ok=False)
    add("binbytes8_huge_length.pth", "BINBYTES8 (the 8-byte-length bytes opcode) declaring 2^62 bytes, "
        "followed by 16", ["BINBYTES8"], None, "length", ["length", "truncated", "too large", "size"],
        P.PROTO + b"\x04" + P.BINBYTES8 + struct.pack("<Q", 2 ** 62) + b"x" * 16 + P.STOP, dis_ok=False)
    add("binunicode8_huge_length.pth", "BINUNICODE8 declaring 2^62 bytes, followed by 16", ["BINUNICODE8"],
        None, "length", ["length", "truncated", "too large", "size"],
        P.PROTO + b"\x04" + P.BINUNICODE8 + struct.pack("<Q", 2 ** 62) + b"x" * 16 + P.STOP, dis_ok=False)

    # --- raw pickles (no zip) ------------------------------------------------------------------
    add("raw_os_system.pkl", "a bare pickle (no zip, no legacy header): os.system by GLOBAL + REDUCE",
        ["GLOBAL", "REDUCE"], "os.system", "os.system", ["os.system", "not a torch", "zip", "format"],
        P.PROTO + b"\x02" + op_global("os", "system") + cmd_args + P.REDUCE + P.STOP, container="raw-pickle",
        note="an importer may refuse it as 'not a torch file' before looking at the opcodes")
    body = op_su("builtins") + P.MEMOIZE + op_su("exec") + P.MEMOIZE + P.STACK_GLOBAL + P.MEMOIZE + \
        op_su(HARMLESS_PY) + P.MEMOIZE + P.TUPLE1 + P.MEMOIZE + P.REDUCE + P.MEMOIZE + P.STOP
    add("raw_stack_global_exec_proto5.pkl", "a bare protocol-5 pickle laid out as Python 3.8+ writes it "
        "(FRAME, SHORT_BINUNICODE, MEMOIZE): builtins.exec by STACK_GLOBAL + REDUCE",
        ["STACK_GLOBAL", "REDUCE"], "builtins.exec", "builtins.exec",
        ["builtins.exec", "STACK_GLOBAL", "not a torch", "zip", "format"],
        P.PROTO + b"\x05" + P.FRAME + struct.pack("<Q", len(body)) + body, container="raw-pickle")
    add("raw_legacy_eval.pt", "the legacy torch.save layout (magic-number pickle 0x1950a86a20f9469cfc6c, "
        "protocol 1001, sys_info) followed by a main pickle that calls builtins.eval, then an empty "
        "storage-key list", ["GLOBAL", "REDUCE"], "builtins.eval", "builtins.eval", ["builtins.eval"],
        legacy_header() + P.PROTO + b"\x02" + op_global("builtins", "eval") + py_args + P.REDUCE + P.STOP +
        P.PROTO + b"\x02" + P.EMPTY_LIST + P.STOP, container="torch-legacy",
        note="the whole file is a sequence of pickles; pickletools checks each one")
    return cases


def write_torch_zip(path, pkl, storages, include_pkl=True, prefix="archive"):
    def w(z, name, data):
        zi = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
        zi.compress_type = zipfile.ZIP_STORED
        zi.external_attr = 0o644 << 16
        z.writestr(zi, data)

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        if include_pkl:
            w(z, "data.pkl", pkl)
        w(z, "byteorder", b"little")
        for key, data in storages:
            w(z, f"data/{key}", data)
        w(z, "version", b"3\n")


class _NullOut:
    def write(self, _text):
        pass


def dis_check(data, container):
    """pickletools.dis over the pickle(s); returns 'ok' or the error. Executes nothing."""
    f = io.BytesIO(data)
    try:
        while True:
            pickletools.dis(f, out=_NullOut(), indentlevel=0)  # indentation would be O(depth^2)
            if container != "torch-legacy" or f.tell() >= len(data):
                break
        if f.tell() != len(data):
            return f"trailing bytes after STOP at {f.tell()}"
        return "ok"
    except Exception as e:  # noqa: BLE001 - any complaint counts
        return first_line(e)


def write_hostile(directory):
    os.makedirs(directory)
    entries = []
    for c in hostile_cases():
        path = os.path.join(directory, c["file"])
        if c["container"] == "torch-zip":
            write_torch_zip(path, c["pkl"], c["storages"], include_pkl=c["include_pkl"])
            with zipfile.ZipFile(path) as z:
                members = z.namelist()
                assert z.testzip() is None
        else:
            with open(path, "wb") as f:
                f.write(c["pkl"])
            members = []
        dis = dis_check(c["pkl"], c["container"])
        assert (dis == "ok") == c["dis_ok"], f"{c['file']}: pickletools says {dis}"
        entry = dict(file=c["file"], container=c["container"], case=c["case"],
                     attack_opcodes=c["attack_opcodes"], attack_global=c["attack_global"],
                     error_keyword=c["error_keyword"], error_keywords_any=c["error_keywords_any"],
                     expect=c["expect"], pickletools_dis=dis,
                     data_pkl_bytes=len(c["pkl"]) if c["include_pkl"] else None,
                     zip_members=members, bytes=os.path.getsize(path), sha256=sha256(path))
        if c["note"]:
            entry["note"] = c["note"]
        if c["container"] == "torch-zip" and c["include_pkl"] and len(c["pkl"]) <= 4096:
            try:
                entry["opcodes"] = opcode_summary(io.BytesIO(c["pkl"]))["opcodes"]
            except Exception:  # noqa: BLE001 - broken on purpose
                pass
        entries.append(entry)
    manifest = dict(
        about="Hostile and broken PyTorch checkpoints. Never load them with pickle or torch. Each must be "
              "refused with an error (expect 'error'), or for expect 'error_or_load' either refused or loaded "
              "without unbounded memory. error_keyword is a short word the importer's error message should "
              "contain; error_keywords_any lists other acceptable words. The payloads are harmless if run "
              f"by mistake: the shell command is {HARMLESS_CMD!r}, the Python code {HARMLESS_PY!r}.",
        zip_layout="torch-zip files: members archive/data.pkl, archive/byteorder ('little'), archive/data/<key>, "
                   "archive/version ('3\\n'), ZIP_STORED, written with Python's zipfile (real torch files use the "
                   "file's stem as the top folder and add .format_version, .storage_alignment and "
                   ".data/serialization_id)",
        files=entries,
    )
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return entries


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

def versions():
    return dict(python=platform.python_version(), torch=torch.__version__, onnx=onnx.__version__,
                onnxruntime=ort.__version__, onnxscript=onnxscript.__version__,
                safetensors=safetensors.__version__, numpy=np.__version__)


def bf16_bits(f32):
    """Round-to-nearest-even float32 -> bfloat16, as bit patterns (no NaNs in these weights)."""
    u = f32.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def generate(tmp):
    t_start = time.time()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    images, labels = load_mnist()
    x_train = to_x(images[:N_TRAIN])
    y_train = torch.from_numpy(labels[:N_TRAIN].astype(np.int64))
    x_eval = to_x(images[N_TRAIN:])
    y_eval = labels[N_TRAIN:].astype(np.int64)
    in_idx = np.arange(10000 - N_INPUTS, 10000)
    inputs_u8 = images[in_idx]
    x_in = to_x(inputs_u8)
    np.save(os.path.join(tmp, "inputs.npy"), inputs_u8)

    files = []      # manifest entries
    expected = {"labels": labels[in_idx].astype(np.int64), "indices": in_idx.astype(np.int64)}
    models_info = {}
    pickle_findings = dict(state_dict_globals=set(), whole_globals=set(), legacy_globals=set(),
                           state_dict_opcodes=set(), whole_opcodes=set(), legacy_opcodes=set())

    def add_file(name, **entry):
        path = os.path.join(tmp, name)
        entry = dict(file=name, bytes=os.path.getsize(path), sha256=sha256(path), **entry)
        files.append(entry)
        return entry

    def save_whole(model, whole, model_name, x, ref_out, expect, notes):
        """torch.save(model) (the whole module pickled), checked and described."""
        wpath = os.path.join(tmp, whole)
        torch.save(model, wpath)
        m2 = torch.load(wpath, weights_only=False)
        with torch.no_grad():
            assert torch.equal(m2(x), ref_out), whole
        try:
            torch.load(wpath)  # torch's default (weights_only=True)
            default_load = "loads"
        except Exception as e:  # noqa: BLE001
            text = str(e)
            key = "WeightsUnpickler error: "
            default_load = (f"{type(e).__name__}: " + text[text.index(key) + len(key):].split(". ")[0]
                            if key in text else first_line(e))
        summary, root, storages, _up = read_zip_checkpoint(wpath)
        tree = module_tree(root)
        pickle_findings["whole_globals"].update(summary["pickle"]["globals"])
        pickle_findings["whole_opcodes"].update(summary["pickle"]["opcodes"])
        return add_file(whole, model=model_name, kind="whole_model", format="torch-zip", expect=expect,
                        deterministic=True, notes=notes, torch_load_default_weights_only=default_load,
                        checked="torch.load(weights_only=False) reproduces the outputs exactly",
                        structure=summary, module_tree=tree)

    for spec in MODELS:
        name = spec["name"]
        model, secs = train(spec, x_train, y_train)
        with torch.no_grad():
            out = model(x_in)
            ev = model(x_eval)
        probs = probs_from_output(out, spec["output"])
        acc_eval = float((ev.argmax(1).numpy() == y_eval).mean())
        acc_in = float((out.argmax(1).numpy() == expected["labels"]).mean())
        expected[f"{name}_output"] = out.numpy().astype(np.float32)
        expected[f"{name}_probs"] = probs.numpy().astype(np.float64)
        expected[f"{name}_argmax"] = out.argmax(1).numpy().astype(np.int64)
        log(f"{name}: trained {spec['epochs']} epochs in {secs:.1f}s, held-out accuracy {acc_eval:.4f}, "
            f"inputs {acc_in:.2f}")
        sd = model.state_dict()
        n_params = sum(p.numel() for p in model.parameters())
        models_info[name] = dict(
            module_class=f"{type(model).__module__}.{type(model).__qualname__}", layers=spec["layers"],
            returns=spec["output"], probs_rule=PROBS_RULE[spec["output"]], parameters=n_params,
            state_dict=[dict(key=k, shape=list(v.shape), dtype=str(v.dtype).replace("torch.", ""))
                        for k, v in sd.items()],
            training=dict(data="MNIST test images 0..7999 (x = uint8/255)", epochs=spec["epochs"],
                          batch=spec["batch"], optimizer=f"Adam(lr={spec['lr']})",
                          loss="cross_entropy on the logits (the Sequential without its final Softmax)"
                          if spec["output"] == "probs" else
                          ("cross_entropy" if spec["output"] == "logits" else "nll_loss"),
                          seed=spec["seed"], seconds=round(secs, 1)),
            accuracy_heldout_images_8000_9999=acc_eval, accuracy_inputs=acc_in,
            saved_in="eval mode (training=False), no gradients",
        )

        # --- tensors as NumPy ----------------------------------------------------------------
        np_tensors = {k: v.detach().numpy().copy() for k, v in sd.items()}
        small = spec.get("small_containers", True)
        if small:
            np.savez(os.path.join(tmp, f"{name}_tensors.npz"), **np_tensors)
            add_file(f"{name}_tensors.npz", model=name, kind="tensors", format="npz",
                     notes="every state-dict tensor as a NumPy array under its state-dict key (np.savez)")
        models_info[name]["tensor_reference"] = (f"{name}_tensors.npz" if small else
                                                 f"{name}.safetensors (no npz for this model: the generator "
                                                 "checks the safetensors tensors against the state dict)")

        # --- state dicts -------------------------------------------------------------------
        state = f"{name}_state.pth"
        torch.save(sd, os.path.join(tmp, state))
        legacy = f"{name}_state_legacy.pt"
        torch.save(sd, os.path.join(tmp, legacy), _use_new_zipfile_serialization=False)
        for fname, reader in ((state, read_zip_checkpoint), (legacy, read_legacy_checkpoint)):
            path = os.path.join(tmp, fname)
            loaded = torch.load(path, weights_only=True)
            assert list(loaded.keys()) == list(sd.keys())
            for k in sd:
                assert loaded[k].dtype == sd[k].dtype and torch.equal(loaded[k], sd[k]), (fname, k)
            summary, root, storages, _up = reader(path)
            recs, arrays, meta = state_dict_records(root, storages)
            for k in sd:
                assert np.array_equal(arrays[k], np_tensors[k]), (fname, k)
            key = "legacy" if reader is read_legacy_checkpoint else "state_dict"
            pickle_findings[f"{key}_globals"].update(summary["pickle"]["globals"])
            pickle_findings[f"{key}_opcodes"].update(summary["pickle"]["opcodes"])
            add_file(fname, model=name, kind="state_dict", format=summary["container"], expect="load",
                     deterministic=reader is read_zip_checkpoint,
                     checked="torch.load(weights_only=True) and the stub walker both give the exact tensors",
                     structure=summary, tensors=recs, state_dict_metadata=jsonable(meta))

        # --- whole model ---------------------------------------------------------------------
        if small:
            save_whole(model, f"{name}_whole.pth", name, x_in, out, expect="load_or_refuse",
                       notes="nn.Sequential of standard torch.nn modules: the layer order and every "
                             "hyper-parameter are in the pickle, so an importer may rebuild it from an "
                             "allow-list of classes (or refuse it)")

        # --- safetensors ---------------------------------------------------------------------
        st = f"{name}.safetensors"
        stpath = os.path.join(tmp, st)
        safetensors.torch.save_file(sd, stpath)
        os.chmod(stpath, 0o644)
        a = safetensors.torch.load_file(stpath)
        b = safetensors.numpy.load_file(stpath)
        for k in sd:
            assert torch.equal(a[k], sd[k]) and np.array_equal(b[k], np_tensors[k]), (st, k)
        with open(stpath, "rb") as f:
            hlen = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(hlen))
        add_file(st, model=name, kind="state_dict", format="safetensors", expect="load", deterministic=True,
                 header_bytes=hlen, header_keys_order=list(header.keys()),
                 dtypes=sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"}),
                 notes="safetensors.torch.save_file(model.state_dict()); chmod 0644 (it writes 0600)")

        # --- ONNX ----------------------------------------------------------------------------
        dummy = x_in[:1].clone()
        onnx_dyn = f"{name}.onnx"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            torch.onnx.export(model.eval(), (dummy,), os.path.join(tmp, onnx_dyn))
        onnx.checker.check_model(os.path.join(tmp, onnx_dyn), full_check=True)  # as exported
        stripped = {onnx_dyn: strip_onnx_paths(os.path.join(tmp, onnx_dyn))}
        exports = [(onnx_dyn, "torch.onnx.export(model.eval(), (x[:1],), path) with every default "
                              "(dynamo exporter); then every node's metadata_props removed with the onnx API "
                              "and the .onnx re-saved (onnx.load(load_external_data=False), onnx.save), the "
                              ".onnx.data untouched")]
        if small:
            onnx_ts = f"{name}_torchscript.onnx"
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                torch.onnx.export(model.eval(), (dummy,), os.path.join(tmp, onnx_ts), dynamo=False,
                                  opset_version=TORCHSCRIPT_OPSET)
            exports.append((onnx_ts, f"torch.onnx.export(model.eval(), (x[:1],), path, dynamo=False, "
                                     f"opset_version={TORCHSCRIPT_OPSET}) (TorchScript exporter)"))
        for fname, how in exports:
            path = os.path.join(tmp, fname)
            onnx.checker.check_model(path, full_check=True)
            summ = onnx_summary(path, sd)
            y, batch = run_onnx(path, x_in.numpy())
            diff = float(np.abs(y - out.numpy()).max())
            assert diff < ONNX_ATOL, (fname, diff)
            assert np.array_equal(y.argmax(1), expected[f"{name}_argmax"]), fname
            data_file = fname + ".data"
            has_data = os.path.exists(os.path.join(tmp, data_file))
            extra = {"metadata_stripped": stripped[fname]} if fname in stripped else {}
            add_file(fname, model=name, kind="onnx", format="onnx", expect="load", how=how,
                     external_data_file=data_file if has_data else None,
                     onnxruntime_batch=batch, onnxruntime_max_abs_diff_vs_torch=diff, onnx=summ, **extra)
            if has_data:
                add_file(data_file, model=name, kind="onnx_external_data", format="raw",
                         notes=f"initializers of {fname} (external_data location/offset/length in the .onnx)")

        # --- f16 / bf16 and the stored expectations for them -------------------------------------
        if spec.get("low_precision"):
            for suffix, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
                fname = f"{name}_state_{suffix}.pth"
                path = os.path.join(tmp, fname)
                low = {k: (v.to(dt) if v.is_floating_point() else v) for k, v in sd.items()}
                torch.save(low, path)
                loaded = torch.load(path, weights_only=True)
                for k in sd:
                    assert loaded[k].dtype == dt and torch.equal(loaded[k], low[k])
                    if dt == torch.float16:
                        assert np.array_equal(loaded[k].numpy(), np_tensors[k].astype(np.float16)), k
                    else:
                        assert np.array_equal(loaded[k].view(torch.int16).numpy().view(np.uint16),
                                              bf16_bits(np_tensors[k])), k
                summary, root, storages, _up = read_zip_checkpoint(path)
                recs, arrays, meta = state_dict_records(root, storages)
                for k in sd:
                    raw = arrays[k]
                    ref = low[k].view(torch.int16).numpy().view(np.uint16) if dt == torch.bfloat16 else low[k].numpy()
                    assert np.array_equal(raw, ref), (fname, k)
                pickle_findings["state_dict_globals"].update(summary["pickle"]["globals"])
                pickle_findings["state_dict_opcodes"].update(summary["pickle"]["opcodes"])
                m16 = spec["make"]()
                m16.load_state_dict({k: v.float() for k, v in low.items()})
                m16.eval()
                with torch.no_grad():
                    o16 = m16(x_in)
                expected[f"{name}_{suffix}_output"] = o16.numpy().astype(np.float32)
                expected[f"{name}_{suffix}_probs"] = probs_from_output(o16, spec["output"]).numpy()
                expected[f"{name}_{suffix}_argmax"] = o16.argmax(1).numpy().astype(np.int64)
                add_file(fname, model=name, kind="state_dict", format="torch-zip", expect="load",
                         deterministic=True, dtype=suffix,
                         tensors_rule=(f"np.float16({name}_tensors.npz[key]) (round to nearest even)"
                                       if suffix == "f16" else
                                       "bfloat16 bits = round-to-nearest-even of the float32 bits of "
                                       f"{name}_tensors.npz[key]: (u + 0x7FFF + ((u >> 16) & 1)) >> 16"),
                         expected_keys=[f"{name}_{suffix}_output", f"{name}_{suffix}_probs",
                                        f"{name}_{suffix}_argmax"],
                         checked="torch.load gives exactly the rule's values; outputs computed by torch in "
                                 "float32 after widening the weights",
                         structure=summary, tensors=recs)

    # --- a whole pickled custom class, for the refusal test ------------------------------------
    torch.manual_seed(CUSTOM_SEED)
    custom = Net().eval()
    x_custom = torch.linspace(-1.0, 1.0, 12).reshape(3, 4)
    with torch.no_grad():
        y_custom = custom(x_custom)
    entry = save_whole(custom, "custom_net_whole.pth", "custom_net", x_custom, y_custom, expect="refuse",
                       notes="custom class __main__.Net (one Linear(4, 2) named fc; forward() is "
                             "2 * tanh(fc(x))): the file holds the class's name and its tensors but not "
                             "forward(), which is Python code, so an importer must refuse it (and suggest "
                             "saving the state dict)")
    assert entry["module_tree"]["cls"] == "__main__.Net", entry["module_tree"]["cls"]
    custom_info = dict(file="custom_net_whole.pth",
        module_class="__main__.Net", layers="fc Linear(4,2); forward(x) = 2 * tanh(fc(x)) (not in the file)",
        returns="-", parameters=sum(p_.numel() for p_ in custom.parameters()), untrained=True,
        seed=f"torch.manual_seed({CUSTOM_SEED})",
        state_dict=[dict(key=k, shape=list(v.shape), dtype=str(v.dtype).replace("torch.", ""),
                         values=v.detach().numpy().tolist()) for k, v in custom.state_dict().items()],
        saved_in="eval mode (training=False); only in custom_net_whole.pth")

    # --- views and shared storages ---------------------------------------------------------------
    flat = torch.arange(30, dtype=torch.float32) * 0.25 - 3.0
    mat = torch.arange(15, dtype=torch.float32).reshape(3, 5) / 8 - 0.5
    odd = torch.arange(10, dtype=torch.float32) - 4.5
    views = collections.OrderedDict([
        ("w_t", mat.t()),                                   # (5,3), stride (1,5): not contiguous
        ("first", flat[:12].view(3, 4)),                    # these two share flat's storage
        ("second", flat[12:].view(3, 6)),                   # storage_offset 12
        ("every_other", odd[1::2]),                         # offset 1, stride 2
        ("broadcast", torch.tensor([1.5, -2.0, 0.25]).expand(4, 3)),  # stride (0, 1)
    ])
    assert not views["w_t"].is_contiguous()
    assert views["first"].untyped_storage().data_ptr() == views["second"].untyped_storage().data_ptr()
    np_views = {k: v.numpy().copy() for k, v in views.items()}
    np.savez(os.path.join(tmp, "views_tensors.npz"), **np_views)
    add_file("views_tensors.npz", model="views", kind="tensors", format="npz",
             notes="the expected value of each tensor of views_state.pth / views_state_legacy.pt, C-contiguous")
    for fname, kw, reader in (("views_state.pth", {}, read_zip_checkpoint),
                              ("views_state_legacy.pt", {"_use_new_zipfile_serialization": False},
                               read_legacy_checkpoint)):
        path = os.path.join(tmp, fname)
        torch.save(dict(views), path, **kw)
        loaded = torch.load(path, weights_only=True)
        for k in views:
            assert torch.equal(loaded[k], views[k]) and loaded[k].stride() == views[k].stride(), (fname, k)
        assert loaded["first"].untyped_storage().data_ptr() == loaded["second"].untyped_storage().data_ptr()
        summary, root, storages, _up = reader(path)
        recs = collections.OrderedDict()
        for k, v in root.items():
            recs[k] = tensor_record(v)
            assert np.array_equal(strided_array(storages[recs[k]["storage_key"]], recs[k]), np_views[k]), k
        add_file(fname, model="views", kind="state_dict", format=summary["container"], expect="load",
                 deterministic=reader is read_zip_checkpoint,
                 notes="a plain dict (not OrderedDict): 'w_t' is a transposed view (stride (1,5)); 'first' and "
                       "'second' are views of one 30-element storage (offsets 0 and 12); 'every_other' has "
                       "offset 1 and stride 2 in a 10-element storage; 'broadcast' is expand() with stride 0 "
                       "over a 3-element storage. Each storage is written once, whole.",
                 structure=summary, tensors=recs)

    # --- expected outputs --------------------------------------------------------------------------
    np.savez(os.path.join(tmp, "expected.npz"), **expected)
    add_file("inputs.npy", kind="inputs", format="npy",
             notes="uint8 (100, 28, 28): MNIST test images 9900..9999; x = inputs/255 as float32 (100,1,28,28)")
    add_file("expected.npz", kind="expected", format="npz", keys=sorted(expected.keys()))

    # --- hostile ---------------------------------------------------------------------------------
    hostile = write_hostile(os.path.join(tmp, "hostile"))

    return dict(files=files, expected=expected, models=models_info, custom_net=custom_info, hostile=hostile,
                findings={k: sorted(v) for k, v in pickle_findings.items()}, seconds=time.time() - t_start)


def write_manifest(tmp, result):
    manifest = dict(
        generator="Fixtures/generate_torch.py",
        versions=versions(),
        data=dict(source="MNIST test set (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
                  training_images="0..7999", heldout_images="8000..9999", input_images="9900..9999 (the last 100)",
                  inputs_file="inputs.npy: uint8, shape (100, 28, 28)",
                  preprocessing="x = inputs.astype(float32) / 255, reshaped to (N, 1, 28, 28) (NCHW); no mean/std "
                                "normalisation (so a converter stores --scale 1/255)"),
        expected=dict(file="expected.npz",
                      keys="<model>_output (float32 (100,10): what the module returns), <model>_probs (float64 "
                           "(100,10): softmax of logits / exp of log-probs / the softmax output, computed from "
                           "torch's float32 output), <model>_argmax (int64 (100,)), labels (int64), indices "
                           "(int64, the MNIST test indices); also lenet_avg_f16_* and lenet_avg_bf16_* for the "
                           "f16/bf16 state dicts (weights widened to float32, then run)"),
        models=result["models"],
        custom_net=result["custom_net"],
        pickle_findings=result["findings"],
        files=result["files"],
        hostile="hostile/manifest.json",
    )
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


# ------------------------------------------------------------------------------------------------
# README
# ------------------------------------------------------------------------------------------------

def human(n):
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else (f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B")


def write_readme(tmp, result):
    v = versions()
    files = result["files"]
    by_name = {f["file"]: f for f in files}
    models = result["models"]
    cn = result["custom_net"]
    all_models = [m["name"] for m in MODELS]
    small_models = [m["name"] for m in MODELS if m.get("small_containers", True)]
    big_models = [m["name"] for m in MODELS if not m.get("small_containers", True)]
    lp = [m["name"] for m in MODELS if m.get("low_precision")][0]
    L = []
    add = L.append
    add("# PyTorch fixtures (`Fixtures/torch/`)")
    add("")
    add("Real files written by PyTorch for the PyTorch importer: four small MNIST models trained briefly "
        "on CPU, saved in the containers PyTorch users produce, with inputs, reference outputs, the "
        "tensors as plain NumPy arrays, a tiny custom class pickled whole (to be refused), and hand-built "
        "hostile pickles in `hostile/`. The 1.2 M-parameter `mnist_cnn` is written only in the four "
        "containers an importer must load (zip and legacy state dict, safetensors, dynamo ONNX); the three "
        "small models carry every container. Everything here, this README included, is written by "
        "`Fixtures/generate_torch.py`; do not edit by hand.")
    add("")
    add("    python3 -m pip install torch onnxscript onnx onnxruntime safetensors numpy")
    add("    python3 Fixtures/generate_torch.py")
    add("")
    add(f"Made with Python {v['python']}, torch {v['torch']}, onnx {v['onnx']}, onnxruntime {v['onnxruntime']}, "
        f"onnxscript {v['onnxscript']}, safetensors {v['safetensors']}, numpy {v['numpy']} "
        "(also in `manifest.json`). The generator seeds everything, trains on one thread with deterministic "
        "algorithms, writes to a temporary directory, reads every file back (torch.load, onnx.checker + "
        "onnxruntime, safetensors, NumPy, and its own pickle walker that imports nothing) and only then "
        "replaces this directory. It needs the MNIST test set in `../shared/data/mnist/` (or "
        "`$NNM_MNIST_DIR`).")
    add("")
    add("## Inputs and preprocessing")
    add("")
    add("- `inputs.npy`: uint8, shape (100, 28, 28): the LAST 100 MNIST test images (indices 9900..9999).")
    add("- Every model takes `x = inputs.astype(float32) / 255` reshaped to (N, 1, 28, 28), NCHW. No mean/std "
        "normalisation (pytorch/examples normalises with 0.1307/0.3081; these models do not), so a converter "
        "stores `--scale 1/255`.")
    add("- Training: the first 8,000 test images (0..7999), Adam, a few epochs. Accuracy is measured on "
        "images 8000..9999 (which include the 100 inputs).")
    add("- `expected.npz`: `<model>_output` float32 (100, 10), exactly what the module returns; "
        "`<model>_probs` float64 (100, 10) computed from that output (softmax of logits / exp of log-probs / "
        "the softmax output itself); `<model>_argmax` int64 (100,); `labels`, `indices` int64. Also "
        f"`{lp}_f16_*` and `{lp}_bf16_*`: the same `{lp}` with the f16/bf16 weights widened to float32 "
        "(`_output`, `_probs`, `_argmax` as above).")
    add("- Tensor references, to check a reader tensor by tensor: " +
        ", ".join(f"`{n}_tensors.npz`" for n in small_models) + " and `views_tensors.npz` hold every tensor "
        "of the state dict under its key, as a C-contiguous NumPy array (`np.savez`). " +
        " ".join(f"`{n}` has no npz: `{n}.safetensors` is its tensor reference (the generator checks that "
                 "its tensors equal the state dict's, and those of every other container of the model)."
                 for n in big_models) +
        f" The f16/bf16 state dicts have no npz of their own: their tensors are `np.float16(x)` and the "
        f"round-to-nearest-even bfloat16 of `x` from `{lp}_tensors.npz` (checked by the generator).")
    add("")
    add("## Models")
    add("")
    add("| model | returns | parameters | held-out accuracy | layers |")
    add("|---|---|---|---|---|")
    for name, m in models.items():
        add(f"| `{name}` | {m['returns']} | {m['parameters']:,} | {m['accuracy_heldout_images_8000_9999']:.4f} "
            f"| {m['layers']} |")
    add("")
    add("All are saved in eval mode (`training` False) without gradients. `mnist_cnn` is the class `Net` of "
        "pytorch/examples' `mnist/main.py`, copied into the generator as `MnistNet` (its class name is in no "
        "file: it has no whole-model pickle, and the ONNX node metadata that named it is stripped). "
        f"`custom_net_whole.pth` pickles a separate tiny class `__main__.Net` ({cn['layers']}; untrained, "
        f"{cn['seed']}); its tensors are listed with their values under `custom_net` in `manifest.json`. "
        "`seq_cnn`'s BatchNorm running statistics come from training (non-trivial); its "
        "`num_batches_tracked` buffers are int64 0-d tensors in every state dict (`I64`, shape `[]` in "
        "safetensors).")
    add("")
    add("## Tensor names and layouts")
    add("")
    add("- Keys are the state-dict keys: `<index>.weight` / `<index>.bias` in an `nn.Sequential` (index = "
        "position in the Sequential, counting parameter-free layers: `mlp` has `1.weight`, `3.weight`), "
        "`conv1.weight`, `fc2.bias`, ... for `mnist_cnn`. BatchNorm2d adds `.running_mean`, `.running_var` "
        "(float32 (C,)) and `.num_batches_tracked` (int64, shape ()). A Conv2d with `bias=False` has no "
        "`.bias` key.")
    add("- `nn.Linear` weight (out_features, in_features), y = x W^T + b. `nn.Conv2d` weight OIHW "
        "(out_channels, in_channels, kH, kW), bias (out_channels,); cross-correlation (not flipped); "
        "`padding=1` is 1 on each side; `stride=2` with no padding takes floor((H - k) / 2) + 1 outputs.")
    add("- Activations are NCHW. `nn.Flatten()` / `torch.flatten(x, 1)` flatten in C, H, W order: feature "
        "index = c*H*W + h*W + w (Keras's HWC order differs).")
    add("- MaxPool2d(2) / AvgPool2d(2) / `F.max_pool2d(x, 2)`: kernel 2, stride 2, no padding, floor mode. "
        "GELU is the exact erf form (`approximate='none'`). LeakyReLU slope 0.1. Softmax / LogSoftmax over "
        "dim 1. BatchNorm2d in eval: y = (x - running_mean) / sqrt(running_var + 1e-5) * weight + bias. "
        "Dropout is the identity in eval.")
    add("")
    add("## Files")
    add("")
    every = ", ".join(f"`{n}`" for n in all_models)
    smalls = ", ".join(f"`{n}`" for n in small_models)
    add("| file | made by | for | what an importer should do |")
    add("|---|---|---|---|")
    add(f"| `<model>_state.pth` | `torch.save(model.state_dict(), path)` (zip format) | {every} | load |")
    add(f"| `<model>_state_legacy.pt` | `torch.save(..., _use_new_zipfile_serialization=False)` | {every} | load |")
    add(f"| `<model>.safetensors` | `safetensors.torch.save_file(model.state_dict(), path)`, then chmod 0644 | "
        f"{every} | load |")
    add("| `<model>.onnx` + `<model>.onnx.data` | `torch.onnx.export(model.eval(), (x[:1],), path)`, all "
        "defaults: dynamo exporter, opset 20, IR 10, `external_data=True`; then every node's `metadata_props` "
        f"removed (see ONNX files) | {every} | load; the initializers are in `<model>.onnx.data` beside the "
        "`.onnx` (external data, relative location) |")
    add(f"| `<model>_torchscript.onnx` | same with `dynamo=False, opset_version={TORCHSCRIPT_OPSET}` "
        f"(TorchScript exporter, weights inside) | {smalls} | load |")
    add(f"| `<model>_whole.pth` | `torch.save(model, path)` | {smalls} | nn.Sequential of standard modules: "
        "rebuild from an allow-list or refuse |")
    add(f"| `<model>_tensors.npz` | `np.savez` of the state dict as NumPy | {smalls} | reference |")
    add(f"| `{lp}_state_f16.pth`, `{lp}_state_bf16.pth` | `torch.save({{k: v.to(torch.float16 / "
        f"torch.bfloat16)}})` of the state dict (zip format; no integer tensors in `{lp}`) | `{lp}` | load; "
        f"expected outputs `{lp}_f16_*` / `{lp}_bf16_*` in `expected.npz` |")
    add("| `custom_net_whole.pth` | `torch.save(Net(), path)` for the tiny custom class `__main__.Net` "
        "(`fc` = Linear(4, 2)) | - | refuse: a custom class, its forward() is Python code that is not in the "
        "file (suggest saving the state dict) |")
    add("")
    add("Also: `views_state.pth` and `views_state_legacy.pt` "
        "(a plain dict of views: `w_t` transposed, stride (1, 5); `first`/`second` two views of one "
        "30-element storage at offsets 0 and 12; `every_other` offset 1 stride 2; `broadcast` = "
        "`expand()` with stride 0) with `views_tensors.npz`; `inputs.npy`, `expected.npz`, `manifest.json` "
        "(every file with size, sha256, pickle structure, tensor records, ONNX graph summary) and `hostile/`.")
    add("")
    # --- container layouts ---------------------------------------------------------------------
    st = by_name["mlp_state.pth"]["structure"]
    add("## Container layouts (as torch " + v["torch"] + " writes them)")
    add("")
    add("**Zip format** (`*_state.pth`, `*_whole.pth`, `lenet_avg_state_f16.pth` / `_bf16.pth`, "
        "`views_state.pth`): a ZIP_STORED zip whose "
        "top folder is the file's stem (`mlp_state/data.pkl`, not `archive/`). Records, in order: " +
        ", ".join(f"`{r['name'].split('/', 1)[1]}`" for r in st["records"]) +
        ". `byteorder` = `little`, `version` = `3\\n` (with a newline), `.format_version` = `1`, "
        "`.storage_alignment` = `64`: every `data/<key>` record starts at a file offset that is a multiple of "
        "64 (padding goes in the local header's extra field), so it can be mmapped. `data/<key>` is the raw "
        "little-endian storage, keys `0`, `1`, ... in order of first use. `.data/serialization_id` is a "
        "40-digit decimal string (deterministic: it is derived from the record names and CRCs). Zip dates "
        "are 0 (DOS 1980-00-00).")
    add("")
    add("`data.pkl` is pickle protocol 2. A state dict is `collections.OrderedDict()` (GLOBAL + EMPTY_TUPLE + "
        "REDUCE), filled by one SETITEMS, then BUILD with `{'_metadata': OrderedDict({'': {'version': 1}, "
        "'0': {...}, ...})}` (module versions; BatchNorm's is 2). Each tensor is "
        "`torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, "
        "backward_hooks=OrderedDict())` (6 arguments). `storage` comes from BINPERSID of the tuple "
        "`('storage', torch.FloatStorage, '<key>', 'cpu', <numel>)`: the storage type is a GLOBAL "
        "(`torch.FloatStorage`, `torch.HalfStorage`, `torch.BFloat16Storage`, `torch.LongStorage` here), "
        "numel counts elements, not bytes. Tensors that share a storage name the same key (written once, "
        "whole). Memo: BINPUT/BINGET with indices 0, 1, 2, ... (LONG_BINPUT past 255).")
    add("")
    add("**Legacy format** (`*_state_legacy.pt`, `views_state_legacy.pt`): five pickles back to back, then "
        "the storages: (1) the magic number 0x1950a86a20f9469cfc6c (LONG1), (2) the protocol version 1001, "
        "(3) sys_info `{'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, "
        "'long': 4}}`, (4) the object, whose persistent ids are 6-tuples `('storage', torch.FloatStorage, "
        "'<key>', 'cpu', numel, None)`, (5) the list of storage keys, sorted as strings. Then, for each key in "
        "that order, an int64 little-endian element count followed by the raw bytes. The keys are the "
        "storages' memory addresses in decimal (`str(storage._cdata)`), so these files differ from run to "
        "run (see Determinism).")
    add("")
    add("**Whole model** (`*_whole.pth`): the zip format; `data.pkl` pickles the module itself: GLOBAL of the "
        "module class + EMPTY_TUPLE + NEWOBJ, then BUILD with the instance `__dict__`. Parameters are "
        "`torch._utils._rebuild_parameter(<_rebuild_tensor_v2(...)>, True, OrderedDict())` (requires_grad "
        "True); buffers are plain `_rebuild_tensor_v2`. The module's forward() is not in the file: for a "
        "custom class only its name (`__main__.Net` in `custom_net_whole.pth`) is. torch's own default "
        "`torch.load` (weights_only=True) refuses every whole-model file, for example " +
        "; ".join(f"`{f['file']}`: \"{f['torch_load_default_weights_only']}\"" for f in files
                  if f["kind"] == "whole_model" and f["model"] in ("mlp", "custom_net")) + ".")
    add("")
    # --- pickle findings -----------------------------------------------------------------------
    fnd = result["findings"]
    add("### Pickle globals and opcodes (from `pickletools` over every data.pkl)")
    add("")
    add("| files | GLOBAL names | opcodes |")
    add("|---|---|---|")
    add("| zip state dicts (f32, f16, bf16, int64 buffers) | " + ", ".join(f"`{g}`" for g in fnd["state_dict_globals"]) +
        " | " + " ".join(fnd["state_dict_opcodes"]) + " |")
    add("| legacy state dicts (main pickle) | " + ", ".join(f"`{g}`" for g in fnd["legacy_globals"]) + " | " +
        " ".join(fnd["legacy_opcodes"]) + " |")
    add("| whole models | " + ", ".join(f"`{g}`" for g in fnd["whole_globals"]) + " | " +
        " ".join(fnd["whole_opcodes"]) + " |")
    add("")
    add("No STACK_GLOBAL, MEMOIZE, FRAME or protocol-4/5 opcode appears: torch.save uses protocol 2.")
    add("")
    add("### nn.Module attributes in the whole-model pickles")
    add("")
    seen = {}
    for f in files:
        if f["kind"] != "whole_model":
            continue
        for node in flatten_tree(f["module_tree"]):
            seen.setdefault(node["cls"], node)
    common = None
    for node in seen.values():
        s = [a for a in node["attributes"] if a.startswith("_") or a == "training"]
        common = s if common is None else [a for a in common if a in s]
    add("Every module's BUILD state has these keys (in this order): " + ", ".join(f"`{a}`" for a in common) +
        ". `_parameters` / `_buffers` / `_modules` are plain dicts (EMPTY_DICT + SETITEMS), `_non_persistent_"
        "buffers_set` is `__builtin__.set([])`, the hook tables are empty `collections.OrderedDict()`, "
        "`_is_full_backward_hook` is None. A parameter slot can hold None (e.g. a bias-free Conv2d's `bias`). "
        "The class-specific attributes:")
    add("")
    add("| class | attributes besides the common ones (values from one instance) |")
    add("|---|---|")
    for cls, node in sorted(seen.items()):
        extra = {k: node["plain_attributes"][k] for k in node["attributes"] if k not in common}
        add(f"| `{cls}` | " + ", ".join(f"`{k}`={json.dumps(val)}" for k, val in extra.items()) + " |")
    add("")
    # --- ONNX ----------------------------------------------------------------------------------
    add("## ONNX files")
    add("")
    add("| file | IR | opsets | input | output | op types (in graph order) | initializers |")
    add("|---|---|---|---|---|---|---|")
    for f in files:
        if f["kind"] != "onnx":
            continue
        o = f["onnx"]
        ins = ", ".join(f"`{i['name']}` {i['shape']}" for i in o["inputs"])
        outs = ", ".join(f"`{i['name']}` {i['shape']}" for i in o["outputs"])
        n_ext = sum(1 for i in o["initializers"] if i["external"])
        add(f"| `{f['file']}` | {o['ir_version']} | {o['opset_import']} | {ins} | {outs} | "
            f"{' '.join(o['op_types'])} | {len(o['initializers'])} ({n_ext} external) |")
    add("")
    add("Both exporters run in eval mode: Dropout disappears and BatchNorm is folded into the preceding Conv "
        "(no BatchNormalization node), so `seq_cnn`'s ONNX weights are not its state-dict tensors even where "
        "the initializer keeps the state-dict name (`manifest.json` records `equals_state_dict_tensor` for "
        "every initializer). The dynamo files keep their initializers in `<model>.onnx.data` beside the "
        "`.onnx` (TensorProto external_data with `location` = the data file's name, `offset`, `length`); "
        "small ones (a few hundred bytes or less) stay inline. The input has a fixed batch of 1 with both "
        "exporters' defaults; onnxruntime reproduces torch's outputs within "
        f"{max(f['onnxruntime_max_abs_diff_vs_torch'] for f in files if f['kind'] == 'onnx'):.1e} "
        "(absolute).")
    add("")
    dyn = [f["onnx"] for f in files if f["kind"] == "onnx" and "metadata_stripped" in f]
    g_keys = sorted({k for o in dyn for k in o["graph_metadata_keys"]})
    io_keys = sorted({k for o in dyn for k in o["input_output_value_info_metadata_keys"]})
    assert not any(o["node_metadata_keys"] or o["initializer_metadata_keys"] for o in dyn)
    add("Differences between the two exporters that an importer meets: the dynamo files flatten with "
        "`Reshape` (`allowzero=1`) and a small int64 shape initializer (`val_<n>`, inline), keep GELU as one "
        "`Gelu` node (opset 20), name inputs/outputs after the FX graph (`input`/`x`, `linear_1`, `log_softmax`, ...), "
        "store the folded Conv+BatchNorm weights of `seq_cnn` under the Conv's state-dict name (`0.weight`, "
        "`0.bias`, and a new `4.weight_bias` for the bias-free conv) and keep `metadata_props` on the graph "
        "(" + ", ".join(f"`{k}`" for k in g_keys) + ") and on graph inputs, outputs and value_info (" +
        ", ".join(f"`{k}`" for k in io_keys) + "), which hold no path and are kept. The TorchScript files use `Flatten`, "
        "decompose GELU into Constant/Div/Erf/Add/Mul, name the folded Conv weights `onnx::Conv_<n>`, name "
        "inputs/outputs by number (`input.1`, `onnx::Flatten_0`, `18`), use IR 8, and keep every "
        "initializer inline. Gemm nodes carry `transB=1` with the (out, in) weight in both.")
    add("")
    stripped = [f for f in files if f["kind"] == "onnx" and "metadata_stripped" in f]
    removed = sorted({k for f in stripped for k in f["metadata_stripped"]["node_metadata_keys_removed"]})
    docs = [d for f in stripped for d in f["metadata_stripped"]["doc_strings_cleared"]]
    path_keys = sorted({k for f in stripped for k in f["metadata_stripped"]["keys_whose_values_held_paths"]})
    assert path_keys
    add("**Stripped node metadata.** The dynamo exporter attaches `metadata_props` to every node (" +
        ", ".join(f"`{k}`" for k in removed) + "); " + " and ".join(f"`{k}`" for k in path_keys) +
        " held absolute paths of torch's and the generator's source files on the machine that ran it "
        "(stack traces). After each export the "
        "generator removes every node's `metadata_props` " +
        ("and clears " + ", ".join(docs) + " " if docs else "(no doc_string held a path) ") +
        "with the onnx Python API: `onnx.load(path, load_external_data=False)`, clear, `onnx.save(model, "
        "path)`. Loading without the external data and saving without conversion leaves `<model>.onnx.data` "
        "untouched: every initializer keeps exactly the `location` / `offset` / `length` torch wrote (the "
        "generator compares them and the data file's sha256 before and after), then runs onnx.checker "
        "(full_check) and onnxruntime again. No file in this directory contains an absolute path (checked "
        "over every file), so nothing depends on where the repository lives. An importer must ignore "
        "`metadata_props` anyway: other exporters' files carry them.")
    add("")
    # --- hostile -------------------------------------------------------------------------------
    add("## `hostile/`")
    add("")
    add("Never load these with pickle or torch. Built byte by byte from `pickle`'s opcode constants; the "
        "payloads are harmless (`echo NNM_HOSTILE_FIXTURE_EXECUTED`, `print(...)`). Zip ones mimic torch: "
        "`archive/data.pkl`, `archive/byteorder` (`little`), `archive/data/<key>`, `archive/version` "
        "(`3\\n`), ZIP_STORED. `hostile/manifest.json` gives for each file the case, the attacking opcodes "
        "and global, the expected result (`error`, or `error_or_load` for the one merely odd file) and a "
        "keyword the importer's error should contain.")
    add("")
    add("| file | attack | global | error keyword |")
    add("|---|---|---|---|")
    for h in result["hostile"]:
        add(f"| `{h['file']}` | {' '.join(h['attack_opcodes'])} | {h['attack_global'] or ''} | "
            f"`{h['error_keyword']}` |")
    add("")
    # --- sizes ---------------------------------------------------------------------------------
    add("## Sizes")
    add("")
    add("| file | bytes |")
    add("|---|---|")
    total = 0
    for f in sorted(files, key=lambda f: f["file"]):
        add(f"| `{f['file']}` | {f['bytes']:,} |")
        total += f["bytes"]
    hostile_total = sum(h["bytes"] for h in result["hostile"])
    add(f"| `hostile/` ({len(result['hostile'])} files + manifest) | {hostile_total:,} |")
    add("")
    big_bytes = sum(f["bytes"] for f in files if f.get("model") in big_models)
    add(f"Total without README.md and the manifests: {human(total + hostile_total)}. " +
        ", ".join(f"`{n}` ({models[n]['parameters']:,} parameters, "
                  f"{human(4 * models[n]['parameters'])} in float32)" for n in big_models) +
        f" accounts for {human(big_bytes)} of it in its {sum(1 for f in files if f.get('model') in big_models)} "
        "files, which is why it has no npz, whole-model, TorchScript-ONNX or f16/bf16 copy.")
    add("")
    add("## Determinism")
    add("")
    add("With the same package versions on this kind of machine, every file is byte-identical from run to "
        "run except the legacy-format files (`*_state_legacy.pt`, `views_state_legacy.pt`), whose storage "
        "keys are memory addresses; their tensors and layout do not change. `manifest.json` marks each "
        "file's `deterministic` flag and records its sha256.")
    add("")
    with open(os.path.join(tmp, "README.md"), "w") as f:
        f.write("\n".join(L))


def check_no_paths(tmp):
    """Nothing written may depend on where the repository (or Python, or torch) lives."""
    marks = [m for m in path_markers() if m.startswith(os.sep)]
    for dp, _dn, fns in os.walk(tmp):
        for fn in fns:
            with open(os.path.join(dp, fn), "rb") as f:
                raw = f.read()
            for mk in marks:
                assert mk.encode() not in raw, f"{fn} contains the absolute path {mk}"


def main():
    if Net.__module__ != "__main__":
        sys.exit("run this file as a script (python3 Fixtures/generate_torch.py): Net must be __main__.Net")
    parent = os.path.dirname(OUT)
    tmp_root = tempfile.mkdtemp(prefix=".torch-tmp-", dir=parent)
    try:
        tmp = os.path.join(tmp_root, "torch")
        os.makedirs(tmp)
        result = generate(tmp)
        write_manifest(tmp, result)
        write_readme(tmp, result)
        check_no_paths(tmp)
        total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _dn, fns in os.walk(tmp) for fn in fns)
        count = sum(len(fns) for _dp, _dn, fns in os.walk(tmp))
        old = OUT + ".old"
        if os.path.exists(old):
            shutil.rmtree(old)
        if os.path.exists(OUT):
            os.rename(OUT, old)
        os.rename(tmp, OUT)
        if os.path.exists(old):
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    accs = ", ".join(f"{k} {v['accuracy_heldout_images_8000_9999']:.3f}" for k, v in result["models"].items())
    print(f"generate_torch: wrote {count} files ({total / 1e6:.1f} MB) to {os.path.relpath(OUT)} in "
          f"{result['seconds']:.0f}s; torch {torch.__version__}; held-out accuracy {accs}; "
          f"{len(result['hostile'])} hostile files")


if __name__ == "__main__":
    main()

"""OpenAI Baselines PPO2 checkpoints (``model.pkl``) and the ``config.json`` beside them.

A Baselines ``model.pkl`` is ``joblib.dump`` of one dict from TensorFlow variable names to
numpy arrays, and numpy scalars for the 0-d ones (docs/spec/networks.md, "Baselines checkpoints"): the
weights and TensorFlow's Adam state. It is read through a restricted unpickler that admits numpy
arrays, numpy scalars and plain containers only, so that nothing in an untrusted file can import
or call anything else.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import pickle
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from joblib import numpy_pickle

from fl_saliency.agents.base import check_action_count
from fl_saliency.common.rundir import CONFIG_FILE, MODEL_FILE
from fl_saliency.common.errors import FlSaliencyError
from fl_saliency.common.io import atomic_write, atomic_write_json
from fl_saliency.agents.networks import NETWORKS, ActorCritic, check_network_name
from fl_saliency.agents.inference import first_nonfinite_parameter

NETWORK_SCOPE = "ppo2_model/pi/"
VALUE_SCOPE = "ppo2_model/vf/"
BETA_POWERS = ("beta1_power:0", "beta2_power:0")  # root scope: the fork creates its Adam outside ppo2_model
MOMENT_SLOTS = ("Adam:0", "Adam_1:0")  # first and second moment, <var>/Adam:0 beside <var>:0
OPTIMIZER_MARKERS = ("/Adam", "beta1_power", "beta2_power")
MAX_CONFIG_BYTES = 2**20  # a config.json is about 1 KB

# (module, name) pairs a checkpoint pickle may reference: numpy arrays, joblib's wrapper
# around them, and plain containers. Everything else is refused before it is imported.
ADAM_BETAS = (0.9, 0.999)  # PyTorch's and TensorFlow's defaults, as Baselines runs them


@dataclass
class AdamState:
    """Adam's state in PyTorch's convention: the steps taken and each parameter's first and second
    moments (``exp_avg``, ``exp_avg_sq``), keyed by the model's ``state_dict`` names."""

    step: int
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]


_ALLOWED_GLOBALS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    }
)


class CheckpointError(FlSaliencyError):
    """A checkpoint that is missing, corrupt, unsafe, or of another network."""


# What a file that is not a regular one is, for the one line that refuses it.
_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path: str | os.PathLike, what: str):
    """``path`` opened for reading bytes; a missing file, a symlink loop, a folder, a FIFO or a device is refused in
    one line that says which, without blocking on a FIFO or reading a device."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO does not wait for a writer
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(f"{what} {path} is a symlink loop") from None
        if exc.errno == errno.ENOENT and path.is_symlink():
            raise CheckpointError(f"{what} {path} is a symlink to {os.readlink(path)}, which does not exist") from None
        if exc.errno == errno.ENOENT:
            raise CheckpointError(f"{what} not found: {path}") from None
        if exc.errno == errno.ENOTDIR:
            file = next((parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir()),
                        path.parent)
            raise CheckpointError(f"{what} not found: {path} ({file} is a file, not a folder)") from None
        raise CheckpointError(f"cannot open {what} {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
        raise CheckpointError(f"{what} {path} is {kind}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


class _LimitedReader:
    """A read-only stream that refuses to hand out more than ``limit`` bytes in all (decompressed, for a compressed
    file), before reading them: a small compressed file cannot make the unpickler allocate gigabytes."""

    def __init__(self, stream, limit: int, path: Path, what: str):
        self.stream, self.left, self.limit, self.path, self.what = stream, limit, limit, path, what

    def _take(self, n: int) -> None:
        if n > self.left:
            raise CheckpointError(f"{self.path} holds more than {_mib(self.limit)} of data, more than any {self.what} "
                                  f"of fl-saliency: refused before reading it")
        self.left -= n

    def read(self, n: int = -1) -> bytes:
        if n is not None and n >= 0:
            self._take(n)  # the unpickler asks for what it needs: refused before it is read
            data = self.stream.read(n)
            self.left += n - len(data)
            return data
        data = self.stream.read(self.left + 1)
        self._take(len(data))
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self.stream.readline(self.left + 1 if n is None or n < 0 else min(n, self.left + 1))
        self._take(len(data))
        return data


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


@dataclass(frozen=True)
class SizeLimits:
    """The most bytes one array and a whole (decompressed) file may declare."""

    array_bytes: int
    file_bytes: int


# Pickled evaluation and saliency files: episode rewards and per-map scores, a few MB for the paper's whole benchmark.
DATA_FILE_LIMITS = SizeLimits(array_bytes=256 * 2**20, file_bytes=256 * 2**20)


@functools.cache
def checkpoint_limits() -> SizeLimits:
    """The largest array and file of any known network at 18 actions, its weights and its two Adam moments; with a
    MiB for the pickle's own bytes."""
    sizes = [[a.nbytes for a in to_baselines(ActorCritic(name, 18, initialise=False)).values()] for name in NETWORKS]
    return SizeLimits(array_bytes=max(map(max, sizes)), file_bytes=3 * max(map(sum, sizes)) + 2**20)


class _RestrictedUnpickler(numpy_pickle.NumpyUnpickler):
    dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()  # pickle dispatches by this table, not by method lookup

    def __init__(self, path: Path, stream, limits: SizeLimits, what: str):
        super().__init__(str(path), _LimitedReader(stream, limits.file_bytes, path, what), ensure_native_byte_order=True)
        self.path, self.limits, self.what = path, limits, what

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise CheckpointError(
                f"refusing to unpickle {module}.{name}: a checkpoint may only hold numpy arrays and plain containers"
            )
        return super().find_class(module, name)

    def load_build(self):
        # joblib allocates a NumpyArrayWrapper's array from its declared shape when this BUILD sets that shape:
        # check the size first.
        instance, state = self.stack[-2:] if len(self.stack) > 1 else (None, None)
        if isinstance(instance, numpy_pickle.NumpyArrayWrapper) and isinstance(state, dict):
            shape, dtype = state.get("shape"), state.get("dtype")
            if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) \
                    or not isinstance(dtype, np.dtype):
                raise CheckpointError(f"{self.path} is not a readable {self.what} (an array without a valid shape)")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > self.limits.array_bytes:
                raise CheckpointError(
                    f"{self.path} declares an array of shape {list(shape)} ({_mib(nbytes)}), larger than any "
                    f"{self.what} of fl-saliency holds ({_mib(self.limits.array_bytes)}): refused before reading it")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def load_restricted(path: str | os.PathLike, what: str = "checkpoint", limits: SizeLimits = DATA_FILE_LIMITS):
    """Unpickle a joblib or plain pickle file that may hold only numpy arrays and plain containers, of at most
    ``limits`` bytes."""
    path = Path(path)
    try:
        with open_regular(path, what) as raw, numpy_pickle._validate_fileobject_and_memmap(raw, str(path), None) as (
            stream,
            _,
        ):
            if isinstance(stream, str):
                raise CheckpointError(f"{path}: joblib < 0.10 files (arrays in side files) are not supported")
            return _RestrictedUnpickler(path, stream, limits, what).load()
    except CheckpointError:
        raise
    except Exception as exc:  # any parse failure of an untrusted file is the user's to know, in one line
        raise CheckpointError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc})") from None


def load_params(path: str | os.PathLike) -> dict[str, np.ndarray | np.generic]:
    """Read a Baselines ``model.pkl`` (joblib, any compression, or a plain pickle) safely.

    Values are numpy arrays, or numpy scalars where TensorFlow's ``sess.run`` gave them for 0-d
    variables (``beta1_power:0``, ``beta2_power:0`` of every released file)."""
    params = load_restricted(path, limits=checkpoint_limits())
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, (np.ndarray, np.generic)) and not v.dtype.hasobject
        for k, v in params.items()
    ):
        raise CheckpointError(f"{path} is not a Baselines checkpoint: expected a dict of variable names to numpy arrays")
    return params


def save_params(params: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write ``params`` as Baselines does (``joblib.dump`` of the dict), atomically."""
    with atomic_write(path, "wb") as f:
        numpy_pickle.dump(params, f)


def is_optimizer_slot(name: str) -> bool:
    return any(marker in name for marker in OPTIMIZER_MARKERS)


def baselines_name(torch_name: str) -> str:
    """``extractor.features.c1.weight`` -> ``ppo2_model/pi/c1/w:0``; ``vf.bias`` -> ``ppo2_model/vf/b:0``.

    The torch container modules ``features`` (the conv block) and ``fls`` (a lone FLS module)
    have no TensorFlow scope of their own; per-layer FLS modules (``h1``, ``h2``, ``h3``) do.
    """
    *path, kind = torch_name.split(".")
    leaf = {"weight": "w:0", "bias": "b:0"}[kind]
    if path[0] == "extractor":
        scopes = [p for p in path[1:] if p not in ("features", "fls")]
        return NETWORK_SCOPE + "/".join([*scopes, leaf])
    return {"pi": NETWORK_SCOPE, "vf": VALUE_SCOPE}[path[0]] + leaf


def slot_name(variable: str, slot: str) -> str:
    """``ppo2_model/pi/c1/w:0``, ``Adam:0`` -> ``ppo2_model/pi/c1/w/Adam:0``."""
    return variable.removesuffix(":0") + "/" + slot


def _to_baselines(tensor: torch.Tensor, conv_bias: bool) -> np.ndarray:
    array = tensor.detach().cpu().numpy().astype(np.float32)
    if array.ndim == 4:  # conv weight OIHW -> HWIO; Dense weights are [in, out] in both
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    return array.reshape(1, -1, 1, 1) if conv_bias else array


def _to_torch(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    if like.ndim == 4:
        array = array.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).reshape(like.shape)


def _conv_bias(torch_name: str, model: ActorCritic) -> bool:
    module = model.get_submodule(torch_name.rsplit(".", 1)[0])
    return isinstance(module, torch.nn.Conv2d) and torch_name.endswith(".bias")


@functools.cache
def tf_beta_powers(beta: float) -> np.ndarray:
    """TensorFlow's ``beta_power`` variable before step 1, 2, ...: it starts at beta and is multiplied by
    beta in float32 after every step (denormals flushed to zero, as TF's Adam does), until 0."""
    powers = [np.float32(beta)]
    while powers[-1] != 0:
        power = powers[-1] * np.float32(beta)
        powers.append(power if power >= np.finfo(np.float32).tiny else np.float32(0))
    return np.array(powers, np.float32)


def tf_beta_power(beta: float, step: int) -> np.float32:
    """``beta_power`` in a TensorFlow Adam that has taken ``step`` steps: beta^(step + 1) as TF rounds it."""
    powers = tf_beta_powers(beta)
    return powers[min(step, len(powers) - 1)]


def steps_of_beta_powers(beta1_power: float, beta2_power: float) -> int:
    """The Adam steps a TensorFlow optimizer with these ``beta_power`` values has taken.

    Past ~830 steps beta1^(t+1) is 0 in float32, past ~87k steps beta2^(t+1) too; from there on
    the bias corrections are exactly 1 and every larger count updates the same, so the first such
    count is returned."""
    for beta, power in zip(ADAM_BETAS, (beta1_power, beta2_power)):
        powers = tf_beta_powers(beta)
        if power > 0:
            return int(np.abs(powers - np.float32(power)).argmin())
    return len(tf_beta_powers(ADAM_BETAS[1])) - 1


def to_baselines(model: ActorCritic, adam: AdamState | None = None) -> dict[str, np.ndarray | np.float32]:
    """The model's weights as a Baselines checkpoint dict (names and layouts of docs/spec/networks.md); with
    ``adam``, also TensorFlow's Adam state for it, every entry the fork's ``Model.save`` writes."""
    weights = {
        baselines_name(name): _to_baselines(tensor, _conv_bias(name, model)) for name, tensor in model.state_dict().items()
    }
    if adam is None:
        return weights
    params = {**weights, **{name: tf_beta_power(beta, adam.step) for name, beta in zip(BETA_POWERS, ADAM_BETAS)}}
    for name in model.state_dict():
        for slot, moments in zip(MOMENT_SLOTS, (adam.exp_avg, adam.exp_avg_sq)):
            params[slot_name(baselines_name(name), slot)] = _to_baselines(moments[name], _conv_bias(name, model))
    return params


def adam_from_baselines(params: dict, model: ActorCritic, source: str = "checkpoint") -> AdamState | None:
    """TensorFlow's Adam state in a checkpoint dict, as PyTorch's for ``model``; None when the file has none.

    TF's moments are PyTorch's (the same recurrences); only the layouts and the step count differ."""
    names = [baselines_name(name) for name in model.state_dict()]
    wanted = [*BETA_POWERS, *(slot_name(name, slot) for name in names for slot in MOMENT_SLOTS)]
    if not any(name in params for name in wanted):
        return None
    for name in wanted:
        if name not in params:
            raise CheckpointError(f"{source} has part of the Adam state but not {name}")
        expected = () if name in BETA_POWERS else np.shape(params[name.rsplit("/", 1)[0] + ":0"])
        if np.shape(params[name]) != expected:
            raise CheckpointError(f"{source}: {name} has shape {list(np.shape(params[name]))}, expected {list(expected)}")
    state = model.state_dict()
    moments = [
        {name: _to_torch(params[slot_name(baselines_name(name), slot)], tensor) for name, tensor in state.items()}
        for slot in MOMENT_SLOTS
    ]
    step = steps_of_beta_powers(*(float(params[name]) for name in BETA_POWERS))
    return AdamState(step=step, exp_avg=moments[0], exp_avg_sq=moments[1])


def expected_shapes(model: ActorCritic) -> dict[str, tuple[int, ...]]:
    return {name: array.shape for name, array in to_baselines(model).items()}


def check_params(params: dict[str, np.ndarray], model: ActorCritic, source: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first parameter that the network lacks, misses or misshapes."""
    expected = expected_shapes(model)
    given = {k: v for k, v in params.items() if not is_optimizer_slot(k)}
    for name, shape in expected.items():
        if name not in given:
            raise CheckpointError(f"{source} does not match network {model.network}: missing parameter {name}")
        if tuple(given[name].shape) != shape:
            raise CheckpointError(
                f"{source} does not match network {model.network}: {name} has shape "
                f"{list(given[name].shape)}, expected {list(shape)}"
            )
    for name in given:
        if name not in expected:
            raise CheckpointError(f"{source} does not match network {model.network}: unexpected parameter {name}")


def check_finite_params(params: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Raise CheckpointError naming the first variable (weight or Adam slot) that holds a NaN or an infinity."""
    for name, value in params.items():
        if not np.isfinite(value).all():
            raise CheckpointError(f"{source}: {name} holds NaN or infinite values; a model with non-finite weights "
                                  f"is refused")


def check_finite_model(model: ActorCritic, path: str) -> None:
    name = first_nonfinite_parameter(model)
    if name is not None:
        raise CheckpointError(f"refusing to write {path}: the weight {baselines_name(name)} holds NaN or infinite values")


def load_into(model: ActorCritic, params: dict[str, np.ndarray], source: str = "checkpoint") -> None:
    """Copy a Baselines checkpoint dict into ``model`` (optimizer slots ignored, but checked to be finite)."""
    check_params(params, model, source)
    check_finite_params(params, source)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(_to_torch(params[baselines_name(name)], tensor))


def n_actions_of(params: dict[str, np.ndarray], source: str = "checkpoint") -> int:
    bias = params.get(NETWORK_SCOPE + "b:0")
    if bias is None or bias.ndim != 1:
        raise CheckpointError(f"{source} has no policy head {NETWORK_SCOPE}b:0 of shape [n_actions]")
    return int(bias.shape[0])


def matching_networks(params: dict[str, np.ndarray]) -> list[str]:
    """All network names whose parameters have exactly the names and shapes of ``params``."""
    n_actions = n_actions_of(params)
    matches = []
    for name in NETWORKS:
        try:
            check_params(params, ActorCritic(name, n_actions, initialise=False))
        except CheckpointError:
            continue
        matches.append(name)
    return matches


# --- experiment folders: model.pkl + config.json ---------------------------------------------


@dataclass(frozen=True)
class Experiment:
    """What an experiment folder says about its model: at least the network and the game."""

    network: str
    env_name: str
    config: dict


def load_config(path: str | os.PathLike) -> Experiment:
    path = Path(path)
    try:
        with open_regular(path, CONFIG_FILE) as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path} is larger than {_mib(MAX_CONFIG_BYTES)}: not a {CONFIG_FILE} of fl-saliency")
        config = json.loads(text.decode())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    missing = [key for key in ("network", "env_name") if not isinstance(config.get(key), str)]
    if missing:
        raise CheckpointError(f"{path} does not name {' and '.join(missing)}")
    check_network_name(config["network"])
    return Experiment(network=config["network"], env_name=config["env_name"], config=config)


def save_config(config: dict, path: str | os.PathLike) -> None:
    atomic_write_json(config, path)


def read_experiment(experiment_dir: str | os.PathLike) -> tuple[Experiment, dict, ActorCritic]:
    """An experiment folder's config, its ``model.pkl`` dict (ours or the paper's) and its network with those weights."""
    from fl_saliency.envs.protocol import protocol_of_config

    experiment_dir = Path(experiment_dir)
    experiment = load_config(experiment_dir / CONFIG_FILE)
    params = load_params(experiment_dir / MODEL_FILE)
    n_actions = n_actions_of(params)
    check_action_count(n_actions, experiment.env_name, str(experiment_dir / MODEL_FILE),
                       protocol_of_config(experiment.config).full_action_space, name_the_set=False)
    model = ActorCritic(experiment.network, n_actions, initialise=False)
    load_into(model, params, source=str(experiment_dir / MODEL_FILE))
    return experiment, params, model


def load_model(experiment_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ActorCritic, Experiment]:
    """Build the experiment's network for its game and load its ``model.pkl`` (ours or the paper's)."""
    experiment, _, model = read_experiment(experiment_dir)
    return model.to(device), experiment


def fresh_adam_state(model: ActorCritic) -> AdamState:
    """Adam before its first step, as TensorFlow creates it: zero moments (beta powers at beta, from step 0)."""
    zeros = {name: torch.zeros_like(tensor) for name, tensor in model.state_dict().items()}
    return AdamState(step=0, exp_avg=zeros, exp_avg_sq=dict(zeros))


def save_model(model: ActorCritic, path: str | os.PathLike, adam: AdamState | None = None) -> None:
    """Write ``model.pkl`` with every variable the fork's ``Model.save`` writes, the original's strict ``Model.load``
    needs them all: the weights and ``adam``'s state, a fresh one when None."""
    check_finite_model(model, str(path))
    save_params(to_baselines(model, adam if adam is not None else fresh_adam_state(model)), path)


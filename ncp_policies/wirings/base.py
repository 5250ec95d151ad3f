"""`Wiring`: which neuron connects to which, as two signed adjacency matrices.

A wiring is plain data that cells read. It is attribute-compatible with ``ncps.wirings.Wiring``
1.0.1, so cells written for ncps read ours:

* ``adjacency_matrix``: (units, units) int32, entry ``[src, dst]`` is -1 (inhibitory synapse),
  0 (no synapse) or +1 (excitatory synapse);
* ``sensory_adjacency_matrix``: (input_dim, units) int32, same encoding, None until built;
* motor neurons are ids ``0 .. output_dim - 1``.

Differences from ncps: ``build(input_dim)`` is idempotent (ncps draws new sensory synapses on every
call), arguments are checked, ``to_config()`` / ``Wiring.from_config()`` round-trip exactly
(matrices included) for every class, and ``roles`` / ``neuron_ids_of_role`` name each neuron's role.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._checks import check_int

if TYPE_CHECKING:  # pragma: no cover - typing only
    import networkx as nx
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

ROLES: Tuple[str, ...] = ("motor", "command", "inter")
"""Every role a neuron can have, in id order (motor neurons come first)."""

_STATE_KEYS = ("class", "units", "output_dim", "input_dim", "adjacency_matrix", "sensory_adjacency_matrix")
_OUR_MODULE_PREFIX = "ncp_policies.wirings."


class Wiring:
    """A wiring of ``units`` neurons with no synapses; subclasses draw them (or call ``add_synapse``).

    Subclass it like ncps' ``Wiring``: add synapses in ``__init__`` with ``add_synapse`` and sensory
    synapses in ``_build_synapses`` (called once by ``build``) with ``add_sensory_synapse``. A
    subclass whose constructor takes other arguments than ``units`` overrides ``_constructor_args``
    so that ``to_config`` / ``from_config`` can rebuild it.

    :param units: number of neurons (the state size of the cell), >= 1.
    """

    _registry: ClassVar[Dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Wiring._registry.setdefault(cls._class_key(), cls)

    def __init__(self, units: int) -> None:
        self.units: int = check_int(type(self).__name__, "units", units, minimum=1)
        self.adjacency_matrix: np.ndarray = np.zeros([self.units, self.units], dtype=np.int32)
        self.sensory_adjacency_matrix: Optional[np.ndarray] = None
        self.input_dim: Optional[int] = None
        self.output_dim: Optional[int] = None
        self._synapses_built: bool = False

    # ------------------------------------------------------------------ structure

    @property
    def state_size(self) -> int:
        """Number of neurons (the cell's state size); the same as ``units``."""
        return self.units

    @property
    def num_layers(self) -> int:
        """Number of neuron layers as cells read them (1 here; NCP has 3: inter, command, motor)."""
        return 1

    def get_neurons_of_layer(self, layer_id: int) -> List[int]:
        """Ids of the neurons of a layer (a new list).

        :param layer_id: layer index in ``[0, num_layers)``.
        :return: neuron ids of that layer.
        """
        check_int(type(self).__name__, "layer_id", layer_id, 0, self.num_layers - 1)
        return list(range(self.units))

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """Role of one neuron: ``"motor"`` for ids below ``output_dim``, else ``"inter"``.

        :param neuron_id: neuron id in ``[0, units)``.
        :return: ``"motor"``, ``"command"`` or ``"inter"``.
        """
        neuron_id = check_int(type(self).__name__, "neuron_id", neuron_id, 0, self.units - 1)
        return "motor" if self.output_dim is not None and neuron_id < self.output_dim else "inter"

    @property
    def roles(self) -> List[str]:
        """Role of every neuron, in id order: ``"motor" | "command" | "inter"`` (length ``units``)."""
        return [self.get_type_of_neuron(i) for i in range(self.units)]

    def neuron_ids_of_role(self, role: str) -> List[int]:
        """Ids of the neurons that have a role, ascending.

        :param role: one of ``"motor"``, ``"command"``, ``"inter"``.
        :return: neuron ids (possibly empty, e.g. ``"command"`` for ``FullyConnected``).
        """
        if role not in ROLES:
            raise ValueError(f"{type(self).__name__}: role must be one of {list(ROLES)}, got {role!r}.")
        return [i for i, r in enumerate(self.roles) if r == role]

    # ------------------------------------------------------------------ building

    def is_built(self) -> bool:
        """Whether the number of input features (and so the sensory synapses) is known."""
        return self.input_dim is not None

    def build(self, input_dim: int) -> None:
        """Fix the number of input features and draw the sensory synapses (once).

        Building again with the same ``input_dim`` is a no-op that keeps both matrices; building
        with another ``input_dim`` raises ValueError.

        :param input_dim: number of input features (sensory neurons), >= 1.
        """
        input_dim = check_int(type(self).__name__, "input_dim", input_dim, minimum=1)
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(
                f"{type(self).__name__} is already built for input_dim={self.input_dim} and cannot be built "
                f"again for input_dim={input_dim}; create a new wiring for inputs of {input_dim} features."
            )
        if self._synapses_built:
            return
        if self.input_dim is None:
            self.set_input_dim(input_dim)
        self._build_synapses()
        self._synapses_built = True

    def _build_synapses(self) -> None:
        """Draw the synapses that depend on ``input_dim`` (called once, by ``build``). None here."""

    def set_input_dim(self, input_dim: int) -> None:
        """Set ``input_dim`` and an empty (input_dim, units) sensory matrix (ncps name; prefer ``build``).

        :param input_dim: number of input features, >= 1; setting the same value again is a no-op.
        """
        input_dim = check_int(type(self).__name__, "input_dim", input_dim, minimum=1)
        if self.input_dim is not None:
            if self.input_dim != input_dim:
                raise ValueError(
                    f"{type(self).__name__}: input_dim is already {self.input_dim}, cannot set it to {input_dim}."
                )
            return
        self.input_dim = input_dim
        self.sensory_adjacency_matrix = np.zeros([input_dim, self.units], dtype=np.int32)

    def set_output_dim(self, output_dim: int) -> None:
        """Set the number of motor neurons (ids ``0 .. output_dim - 1``).

        :param output_dim: number of motor neurons in ``[1, units]``.
        """
        self.output_dim = check_int(type(self).__name__, "output_dim", output_dim, 1, self.units)

    # ------------------------------------------------------------------ synapses

    def add_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Set the synapse ``src -> dest`` between two neurons.

        :param src: presynaptic neuron id in ``[0, units)``.
        :param dest: postsynaptic neuron id in ``[0, units)``.
        :param polarity: +1 (excitatory) or -1 (inhibitory).
        """
        name = type(self).__name__
        src = check_int(name, "src", src, 0, self.units - 1)
        dest = check_int(name, "dest", dest, 0, self.units - 1)
        self.adjacency_matrix[src, dest] = _check_polarity(name, polarity)

    def add_sensory_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Set the synapse from input feature ``src`` to neuron ``dest`` (after ``build``).

        :param src: input feature id in ``[0, input_dim)``.
        :param dest: postsynaptic neuron id in ``[0, units)``.
        :param polarity: +1 (excitatory) or -1 (inhibitory).
        """
        name = type(self).__name__
        matrix = self._require_sensory("add_sensory_synapse")
        src = check_int(name, "src", src, 0, matrix.shape[0] - 1)
        dest = check_int(name, "dest", dest, 0, self.units - 1)
        matrix[src, dest] = _check_polarity(name, polarity)

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons (non-zero entries of ``adjacency_matrix``)."""
        return int(np.sum(np.abs(self.adjacency_matrix)))

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from the inputs to the neurons (needs ``build``)."""
        return int(np.sum(np.abs(self._require_sensory("sensory_synapse_count"))))

    def erev_initializer(self, shape: Any = None, dtype: Any = None) -> np.ndarray:
        """Copy of ``adjacency_matrix`` (units, units), the reversal-potential signs LTC cells start from.

        :param shape: ignored (ncps/Keras initializer signature).
        :param dtype: ignored (ncps/Keras initializer signature).
        :return: int32 array (units, units).
        """
        return np.copy(self.adjacency_matrix)

    def sensory_erev_initializer(self, shape: Any = None, dtype: Any = None) -> np.ndarray:
        """Copy of ``sensory_adjacency_matrix`` (input_dim, units) (needs ``build``).

        :param shape: ignored (ncps/Keras initializer signature).
        :param dtype: ignored (ncps/Keras initializer signature).
        :return: int32 array (input_dim, units).
        """
        return np.copy(self._require_sensory("sensory_erev_initializer"))

    def _require_sensory(self, what: str) -> np.ndarray:
        if self.sensory_adjacency_matrix is None:
            raise ValueError(
                f"{type(self).__name__}.{what} needs the sensory synapses, which exist only after "
                f"build(input_dim) has been called (or the wiring was passed to a cell with its input size)."
            )
        return self.sensory_adjacency_matrix

    # ------------------------------------------------------------------ config

    @classmethod
    def _class_key(cls) -> str:
        """Name stored under ``"class"`` in configs: the bare name for ours, module-qualified for others."""
        if cls.__module__ == __name__ or cls.__module__.startswith(_OUR_MODULE_PREFIX):
            return cls.__name__
        return f"{cls.__module__}.{cls.__qualname__}"

    def _constructor_args(self) -> Dict[str, Any]:
        """The constructor's arguments that rebuild this wiring (JSON-able); subclasses override."""
        return {"units": self.units}

    def to_config(self) -> Dict[str, Any]:
        """JSON-serialisable description from which ``Wiring.from_config`` rebuilds this wiring exactly.

        :return: ``{"class": name, <constructor arguments>, "units", "output_dim", "input_dim",
            "adjacency_matrix": nested lists (units, units), "sensory_adjacency_matrix": nested lists
            (input_dim, units) or None}``.
        """
        config: Dict[str, Any] = {"class": self._class_key()}
        config.update(self._constructor_args())
        config.update(
            units=self.units,
            output_dim=self.output_dim,
            input_dim=self.input_dim,
            adjacency_matrix=self.adjacency_matrix.tolist(),
            sensory_adjacency_matrix=(
                None if self.sensory_adjacency_matrix is None else self.sensory_adjacency_matrix.tolist()
            ),
        )
        return config

    def get_config(self) -> Dict[str, Any]:
        """ncps' name for ``to_config`` (returns the same dict)."""
        return self.to_config()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Wiring":
        """Rebuild a wiring from ``to_config()`` output (the subclass named by ``"class"``).

        Configs without ``"class"`` (as ncps' ``get_config`` writes them) build ``cls`` itself, and
        configs without matrices are built from the constructor arguments alone.

        :param config: a mapping as written by ``to_config`` (e.g. after a JSON round trip).
        :return: a wiring of the named class with identical matrices, ``input_dim`` and ``output_dim``.
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"{cls.__name__}.from_config: config must be a dict, got {type(config).__name__}.")
        target = cls._resolve_class(config.get("class"))
        parameters = inspect.signature(target.__init__).parameters
        arg_names = [p for p in parameters if p != "self"]
        unknown = sorted(set(config) - set(arg_names) - set(_STATE_KEYS))
        if unknown:
            raise ValueError(
                f"{target.__name__}.from_config: unknown keys {unknown}; allowed keys are "
                f"{sorted(set(arg_names) | set(_STATE_KEYS))}."
            )
        wiring = target(**{k: config[k] for k in arg_names if k in config})
        wiring._restore_state(config)
        return wiring

    @classmethod
    def _resolve_class(cls, class_key: Optional[str]) -> type:
        if class_key is None:
            return cls
        target = Wiring._registry.get(class_key)
        if target is None:
            raise ValueError(
                f"Wiring.from_config: unknown wiring class {class_key!r}; known classes are "
                f"{sorted(Wiring._registry)} (import the module defining a custom class first)."
            )
        if not issubclass(target, cls):
            raise ValueError(
                f"{cls.__name__}.from_config got a config of class {class_key!r}, which is not a {cls.__name__}; "
                f"use Wiring.from_config to accept any wiring class."
            )
        return target

    def _restore_state(self, config: Mapping[str, Any]) -> None:
        """Overwrite sizes and matrices with those stored in ``config`` (checking shapes and values)."""
        name = type(self).__name__
        for key in ("units", "output_dim"):
            stored = config.get(key)
            if stored is None:
                continue
            if key == "output_dim" and self.output_dim is None:
                self.set_output_dim(stored)
            elif stored != getattr(self, key):
                raise ValueError(
                    f"{name}.from_config: config says {key}={stored!r} but its constructor arguments give "
                    f"{key}={getattr(self, key)!r}; the config is inconsistent."
                )
        adjacency = config.get("adjacency_matrix")
        if adjacency is not None:
            self.adjacency_matrix = _as_adjacency(name, "adjacency_matrix", adjacency, (self.units, self.units))
        sensory = config.get("sensory_adjacency_matrix")
        input_dim = config.get("input_dim")
        if sensory is not None:
            sensory_array = _as_adjacency(name, "sensory_adjacency_matrix", sensory, None)
            if sensory_array.ndim != 2 or sensory_array.shape[1] != self.units:
                raise ValueError(
                    f"{name}.from_config: sensory_adjacency_matrix must have shape (input_dim, {self.units}), "
                    f"got {sensory_array.shape}."
                )
            if input_dim is not None and input_dim != sensory_array.shape[0]:
                raise ValueError(
                    f"{name}.from_config: input_dim={input_dim!r} but sensory_adjacency_matrix has "
                    f"{sensory_array.shape[0]} rows."
                )
            self.set_input_dim(sensory_array.shape[0])
            self.sensory_adjacency_matrix = sensory_array
            self._synapses_built = True
        elif input_dim is not None:
            self.build(input_dim)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._constructor_args().items())
        return f"{type(self).__name__}({args}, input_dim={self.input_dim!r})"

    # ------------------------------------------------------------------ graph

    def get_graph(self, include_sensory_neurons: bool = True) -> "nx.DiGraph":
        """The wiring as a networkx DiGraph (needs ``build`` when sensory neurons are included).

        Nodes ``"neuron_{i}"`` (attribute ``neuron_type`` = role) and ``"sensory_{i}"`` (``"sensory"``);
        edges carry ``polarity`` = ``"excitatory"`` or ``"inhibitory"`` (as in ncps).

        :param include_sensory_neurons: whether to add the input features and their synapses.
        :return: the directed graph.
        """
        import networkx as nx

        graph = nx.DiGraph()
        for i, role in enumerate(self.roles):
            graph.add_node(f"neuron_{i}", neuron_type=role)
        if include_sensory_neurons:
            sensory = self._require_sensory("get_graph(include_sensory_neurons=True)")
            for i in range(sensory.shape[0]):
                graph.add_node(f"sensory_{i}", neuron_type="sensory")
            for src, dest in zip(*np.nonzero(sensory)):
                graph.add_edge(f"sensory_{src}", f"neuron_{dest}", polarity=_polarity_name(sensory[src, dest]))
        for src, dest in zip(*np.nonzero(self.adjacency_matrix)):
            graph.add_edge(
                f"neuron_{src}", f"neuron_{dest}", polarity=_polarity_name(self.adjacency_matrix[src, dest])
            )
        return graph

    def draw_graph(
        self,
        layout: str = "shell",
        neuron_colors: Union[None, Mapping[str, str], Sequence[float], Sequence[str], np.ndarray] = None,
        *,
        draw_labels: bool = True,
        ax: Optional["Axes"] = None,
        path: Union[None, str, Path] = None,
        synapse_colors: Union[None, str, Mapping[str, str]] = None,
        cmap: Union[str, "Colormap"] = "viridis",
        colorbar_label: str = "activity",
        vmin: Optional[float] = None,
        vmax: Optional[float] = None,
        title: Optional[str] = None,
        seed: int = 0,
    ) -> "Figure":
        """Draw the wiring with networkx + matplotlib (no pyplot figure is created: safe headless).

        Arguments after ``neuron_colors`` are keyword-only (ncps' third positional argument was
        ``synapse_colors``). See ``ncp_policies.wirings.drawing.draw_wiring``.

        :param layout: ``"shell"`` (rings by role), ``"layered"`` (columns sensory → inter → command →
            motor), ``"spring"``, ``"circular"``, ``"kamada"`` (needs scipy), ``"spectral"``,
            ``"spiral"`` or ``"random"``.
        :param neuron_colors: None (colour by role); a mapping role → colour (ncps style, roles
            ``"sensory" | "inter" | "command" | "motor"``); a sequence of ``units`` floats (e.g.
            activity), mapped through ``cmap`` with a colorbar, roles then shown by the node outline;
            or a sequence of ``units`` colour strings.
        :param draw_labels: write neuron ids (and ``s{i}`` for inputs) on the nodes.
        :param ax: matplotlib Axes to draw into; None creates a new Figure.
        :param path: if given, save the figure there (format from the suffix, e.g. ``.png``, ``.svg``).
        :param synapse_colors: one colour, or a mapping ``{"excitatory": c, "inhibitory": c}``.
        :param cmap: colormap (or its name) for float ``neuron_colors``.
        :param colorbar_label: colorbar label for float ``neuron_colors``.
        :param vmin: colormap lower bound (default: min of the values).
        :param vmax: colormap upper bound (default: max of the values).
        :param title: axes title.
        :param seed: seed of the ``"spring"`` and ``"random"`` layouts.
        :return: the matplotlib Figure drawn into.
        """
        from .drawing import draw_wiring

        return draw_wiring(
            self,
            layout=layout,
            neuron_colors=neuron_colors,
            draw_labels=draw_labels,
            ax=ax,
            path=path,
            synapse_colors=synapse_colors,
            cmap=cmap,
            colorbar_label=colorbar_label,
            vmin=vmin,
            vmax=vmax,
            title=title,
            seed=seed,
        )


Wiring._registry["Wiring"] = Wiring


def _check_polarity(owner: str, polarity: object) -> int:
    if isinstance(polarity, (str, bytes)) or polarity not in (-1, 1):
        raise ValueError(f"{owner}: polarity must be -1 (inhibitory) or +1 (excitatory), got {polarity!r}.")
    return int(polarity)  # type: ignore[call-overload]


def _polarity_name(value: Any) -> str:
    return "excitatory" if value >= 0 else "inhibitory"


def _as_adjacency(owner: str, name: str, value: Any, shape: Optional[Tuple[int, int]]) -> np.ndarray:
    """Convert nested lists to an int32 matrix, checking the shape and that entries are -1, 0 or +1."""
    array = np.asarray(value)
    if array.dtype.kind not in "iub" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise ValueError(f"{owner}.from_config: {name} must hold integers -1, 0 or +1, got dtype {array.dtype}.")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{owner}.from_config: {name} must have shape {shape}, got {array.shape}.")
    if array.size and not np.isin(array, (-1, 0, 1)).all():
        raise ValueError(f"{owner}.from_config: {name} entries must be -1, 0 or +1, got {np.unique(array).tolist()}.")
    return array.astype(np.int32)

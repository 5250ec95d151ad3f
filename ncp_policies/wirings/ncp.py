"""`NCP` and `AutoNCP`: the four-layer Neural Circuit Policy wiring (sensory → inter → command → motor)."""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from ._checks import check_int, check_real, check_seed
from .base import Wiring


class NCP(Wiring):
    """Neural Circuit Policy wiring (Lechner et al., 2020), identical to ``ncps.wirings.NCP`` 1.0.1.

    Neuron ids: ``[0, motor)`` motor, ``[motor, motor + command)`` command, the rest inter.
    ``build(input_dim)`` draws, with ``np.random.RandomState(seed)`` and in ncps' call order:
    sensory → inter synapses (each input to ``sensory_fanout`` inter neurons), inter → command
    (each inter neuron to ``inter_fanout`` command neurons), ``recurrent_command_synapses`` random
    command → command synapses, and command → motor (each motor neuron from ``motor_fanin``
    command neurons); neurons left without input / output get a few extra synapses; every
    polarity is ``choice([-1, 1])``.

    :param inter_neurons: number of inter neurons (layer 1), >= 1.
    :param command_neurons: number of command neurons (layer 2), >= 1.
    :param motor_neurons: number of motor neurons (layer 3 = number of outputs), >= 1.
    :param sensory_fanout: outgoing synapses of each input to inter neurons, in ``[1, inter_neurons]``.
    :param inter_fanout: outgoing synapses of each inter neuron to command neurons, in ``[1, command_neurons]``.
    :param recurrent_command_synapses: number of random command → command synapses drawn, >= 0.
    :param motor_fanin: incoming synapses of each motor neuron from command neurons, in ``[1, command_neurons]``.
    :param seed: seed of the wiring, an int in ``[0, 2**32 - 1]``.
    """

    def __init__(
        self,
        inter_neurons: int,
        command_neurons: int,
        motor_neurons: int,
        sensory_fanout: int,
        inter_fanout: int,
        recurrent_command_synapses: int,
        motor_fanin: int,
        seed: int = 22222,
    ) -> None:
        name = type(self).__name__
        inter = check_int(name, "inter_neurons", inter_neurons, minimum=1)
        command = check_int(name, "command_neurons", command_neurons, minimum=1)
        motor = check_int(name, "motor_neurons", motor_neurons, minimum=1)
        self._sensory_fanout: int = check_int(
            name, "sensory_fanout", sensory_fanout, 1, inter,
            hint=f"Each input connects to sensory_fanout distinct inter neurons, and there are {inter}.",
        )
        self._inter_fanout: int = check_int(
            name, "inter_fanout", inter_fanout, 1, command,
            hint=f"Each inter neuron connects to inter_fanout distinct command neurons, and there are {command}.",
        )
        self._recurrent_command_synapses: int = check_int(
            name, "recurrent_command_synapses", recurrent_command_synapses, minimum=0,
            hint="It is the number of command -> command synapses drawn (0 = none).",
        )
        self._motor_fanin: int = check_int(
            name, "motor_fanin", motor_fanin, 1, command,
            hint=f"Each motor neuron receives motor_fanin distinct command neurons, and there are {command}.",
        )
        self._seed: int = check_seed(name, "seed", seed)
        super().__init__(inter + command + motor)
        self.set_output_dim(motor)
        self._rng = np.random.RandomState(self._seed)
        self._num_inter_neurons: int = inter
        self._num_command_neurons: int = command
        self._num_motor_neurons: int = motor
        self._motor_neurons: List[int] = list(range(0, motor))
        self._command_neurons: List[int] = list(range(motor, motor + command))
        self._inter_neurons: List[int] = list(range(motor + command, motor + command + inter))

    @property
    def num_layers(self) -> int:
        """3: inter (layer 0), command (layer 1), motor (layer 2), as ncps' cells read them."""
        return 3

    def get_neurons_of_layer(self, layer_id: int) -> List[int]:
        """Ids of the neurons of a layer: 0 = inter, 1 = command, 2 = motor (a new list).

        :param layer_id: layer index in ``[0, 2]``.
        :return: neuron ids of that layer.
        """
        layer_id = check_int(type(self).__name__, "layer_id", layer_id, 0, 2)
        return list((self._inter_neurons, self._command_neurons, self._motor_neurons)[layer_id])

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """Role of one neuron: ``"motor"``, ``"command"`` or ``"inter"``.

        :param neuron_id: neuron id in ``[0, units)``.
        :return: the role.
        """
        neuron_id = check_int(type(self).__name__, "neuron_id", neuron_id, 0, self.units - 1)
        if neuron_id < self._num_motor_neurons:
            return "motor"
        if neuron_id < self._num_motor_neurons + self._num_command_neurons:
            return "command"
        return "inter"

    def set_input_dim(self, input_dim: int) -> None:
        """Set ``input_dim`` (and ncps' ``_sensory_neurons`` list); prefer ``build``.

        :param input_dim: number of input features, >= 1.
        """
        super().set_input_dim(input_dim)
        assert self.input_dim is not None
        self._num_sensory_neurons: int = self.input_dim
        self._sensory_neurons: List[int] = list(range(self.input_dim))

    def _build_synapses(self) -> None:
        # The order of the random draws below is ncps 1.0.1's, so that matrices are bit-identical.
        self._build_sensory_to_inter_layer()
        self._build_inter_to_command_layer()
        self._build_recurrent_command_layer()
        self._build_command_to_motor_layer()

    def _build_sensory_to_inter_layer(self) -> None:
        unreachable = list(self._inter_neurons)
        for src in self._sensory_neurons:
            for dest in self._rng.choice(self._inter_neurons, size=self._sensory_fanout, replace=False):
                if dest in unreachable:
                    unreachable.remove(dest)
                self.add_sensory_synapse(src, dest, self._rng.choice([-1, 1]))
        fanin = int(self._num_sensory_neurons * self._sensory_fanout / self._num_inter_neurons)
        fanin = np.clip(fanin, 1, self._num_sensory_neurons)
        for dest in unreachable:
            for src in self._rng.choice(self._sensory_neurons, size=fanin, replace=False):
                self.add_sensory_synapse(src, dest, self._rng.choice([-1, 1]))

    def _build_inter_to_command_layer(self) -> None:
        unreachable = list(self._command_neurons)
        for src in self._inter_neurons:
            for dest in self._rng.choice(self._command_neurons, size=self._inter_fanout, replace=False):
                if dest in unreachable:
                    unreachable.remove(dest)
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))
        fanin = int(self._num_inter_neurons * self._inter_fanout / self._num_command_neurons)
        fanin = np.clip(fanin, 1, self._num_command_neurons)  # ncps' bound (never above inter_neurons here)
        for dest in unreachable:
            for src in self._rng.choice(self._inter_neurons, size=fanin, replace=False):
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))

    def _build_recurrent_command_layer(self) -> None:
        for _ in range(self._recurrent_command_synapses):
            src = self._rng.choice(self._command_neurons)
            dest = self._rng.choice(self._command_neurons)
            self.add_synapse(src, dest, self._rng.choice([-1, 1]))

    def _build_command_to_motor_layer(self) -> None:
        unreachable = list(self._command_neurons)
        for dest in self._motor_neurons:
            for src in self._rng.choice(self._command_neurons, size=self._motor_fanin, replace=False):
                if src in unreachable:
                    unreachable.remove(src)
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))
        fanout = int(self._num_motor_neurons * self._motor_fanin / self._num_command_neurons)
        fanout = np.clip(fanout, 1, self._num_motor_neurons)
        for src in unreachable:
            for dest in self._rng.choice(self._motor_neurons, size=fanout, replace=False):
                self.add_synapse(src, dest, self._rng.choice([-1, 1]))

    def _constructor_args(self) -> Dict[str, Any]:
        return {
            "inter_neurons": self._num_inter_neurons,
            "command_neurons": self._num_command_neurons,
            "motor_neurons": self._num_motor_neurons,
            "sensory_fanout": self._sensory_fanout,
            "inter_fanout": self._inter_fanout,
            "recurrent_command_synapses": self._recurrent_command_synapses,
            "motor_fanin": self._motor_fanin,
            "seed": self._seed,
        }


class AutoNCP(NCP):
    """NCP wiring sized from ``units`` and ``output_size`` alone, identical to ``ncps.wirings.AutoNCP`` 1.0.1.

    With ``density = 1 - sparsity_level``: ``command = max(int(0.4 * (units - output_size)), 1)``,
    ``inter = units - output_size - command``, ``sensory_fanout = max(int(inter * density), 1)``,
    ``inter_fanout = motor_fanin = max(int(command * density), 1)`` and
    ``recurrent_command_synapses = max(int(command * density * 2), 1)``.

    :param units: total number of neurons, >= 4.
    :param output_size: number of motor neurons, in ``[1, units - 3]`` (ncps requires ``< units - 2``;
        about 0.3 * units is a good choice).
    :param sparsity_level: fraction of absent synapses, in ``[0.1, 1.0]`` (the range ncps accepts).
    :param seed: seed of the wiring, an int in ``[0, 2**32 - 1]``.
    """

    def __init__(
        self,
        units: int,
        output_size: int,
        sparsity_level: float = 0.5,
        seed: int = 22222,
    ) -> None:
        units = check_int(
            "AutoNCP", "units", units, minimum=4,
            hint="AutoNCP needs at least 3 neurons besides the motor neurons (inter and command).",
        )
        self._output_size: int = check_int(
            "AutoNCP", "output_size", output_size, 1, units - 3,
            hint=f"It is the number of motor neurons and must leave at least 3 of the {units} units "
            "for inter and command neurons (increase units or decrease output_size).",
        )
        self._sparsity_level: float = check_real("AutoNCP", "sparsity_level", sparsity_level, 0.1, 1.0, True)
        self._seed = check_seed("AutoNCP", "seed", seed)
        density = 1.0 - self._sparsity_level
        inter_and_command = units - self._output_size
        command = max(int(0.4 * inter_and_command), 1)
        inter = inter_and_command - command
        super().__init__(
            inter_neurons=inter,
            command_neurons=command,
            motor_neurons=self._output_size,
            sensory_fanout=max(int(inter * density), 1),
            inter_fanout=max(int(command * density), 1),
            recurrent_command_synapses=max(int(command * density * 2), 1),
            motor_fanin=max(int(command * density), 1),
            seed=self._seed,
        )

    def _constructor_args(self) -> Dict[str, Any]:
        return {
            "units": self.units,
            "output_size": self._output_size,
            "sparsity_level": self._sparsity_level,
            "seed": self._seed,
        }

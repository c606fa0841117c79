"""``Output``: the base class of a per-example output defined in the user's own module.

A subclass that sets ``name`` is catalogued when the class is defined (its module is
imported), with the row shape, flags and options dataclass it declares; a strategy
then names it in ``needs`` (``frozenset({MyOutput.name})``, which also imports it),
and the scorer's ``predictor.OutputPredictor`` calls its ``compute`` on every prediction batch. Nothing in
lit_al is edited, and nothing here imports torch: the class computes with torch
only when ``compute`` runs.

::

    @dataclass(frozen=True)
    class MarginOptions:
        rival: int = 2

    class LogitMargin(Output):
        name = "logit_margin"
        row_shape = "()"
        description = "top logit minus the rival-th largest"
        options = MarginOptions

        def compute(self, module, batch, request, cache):
            top = cache.logits.topk(request.options.of(self.name).rival, dim=-1).values
            return top[:, 0] - top[:, -1]
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import StrategyError
from .catalog import OutputSpec, register_spec


class Output:
    """A per-example output computed while the pool is scored; subclass it and set ``name`` to catalogue it.

    Class attributes:
        name: the output's name: what strategies put in ``needs``, the key of its array
            in ``outputs`` and of its options in ``prediction_options()``.
        row_shape: one example's row, for people (``"()"``, ``"(d,)"``, ``"(T, C)"``).
        description: one line on what the row holds.
        gradients: ``compute`` takes gradients (the pool is scored with ``inference_mode=False``;
            Lightning still predicts under ``torch.no_grad``, which ``torch.enable_grad`` lifts).
        reference: rows are computed relative to the labeled rows' values of this output,
            given as ``request.reference[name]`` (the labeled rows are scored first).
        sample_axis: rows are (T, ...); the strategy sees (T, n, ...).
        options: a dataclass of the output's options (None: it takes none); ``compute``
            reads them as ``request.options.of(self.name)``.
    """

    name: ClassVar[str] = ""
    row_shape: ClassVar[str] = "()"
    description: ClassVar[str] = ""
    gradients: ClassVar[bool] = False
    reference: ClassVar[bool] = False
    sample_axis: ClassVar[bool] = False
    options: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in vars(cls):  # an intermediate base class, or a subclass of an output keeping its name
            return
        if cls.compute is Output.compute:
            raise StrategyError(f"output class {cls.__qualname__}: define compute(self, module, batch, request, cache)")
        register_spec(OutputSpec(
            cls.name, str(cls.row_shape), str(cls.description or (cls.__doc__ or "").strip().split("\n")[0]),
            gradients=bool(cls.gradients), reference=bool(cls.reference), sample_axis=bool(cls.sample_axis),
            options=cls.options, computer=cls,
        ))

    def compute(self, module: Any, batch: dict[str, Any], request: Any, cache: Any) -> Any:
        """The (B, *row_shape) tensor of one prediction batch.

        ``module`` is the classifier (what ``forward.Classifier`` lists of it), ``batch`` its tokenized batch
        (``input_ids``, ``attention_mask``, ``pool_index``), ``request`` the
        ``PredictionRequest`` (``options.of(self.name)``, ``seed``, ``reference``), ``cache``
        the batch's shared ``forward.ForwardCache`` (``logits``, ``features`` h(x),
        ``encoder_output``), so outputs of one batch share one forward pass. Rows are
        stored as float32 by pool index.
        """
        raise NotImplementedError

"""Beam's DaskRunner, with the fixes it needs to deliver every element (apache-beam 2.77).

Run on Beam's own DaskRunner, our pipelines lost items. Small pipelines showed four causes in
`apache_beam/runners/dask/`:

1. `apply_dofn_to_bundle` copies a bundle's outputs before `finish_bundle` runs, so whatever a DoFn emits
   there is dropped. BatchElements emits each bundle's last, partial batch there: those items vanished
   (682 of 1,003 elements came out of `Create | BatchElements(10, 100) | FlatMap`).
2. A ParDo's tagged outputs all land in one bag, and every consumer reads the whole bag: the consumer of the
   main output also received the dead-letter (`TaggedOutput`) elements, and the other way round.
3. Only the bag of the last visited transform is computed: any other branch ending in a sink never runs
   (of two writes of the same collection, one wrote nothing). Computing each leaf on its own instead runs
   the shared steps once per leaf: inference three times over.
4. Files cannot be read: ReadFromText expands to an Impulse and a splittable DoFn, which have no translation.

`CompleteDaskRunner` keeps Beam's translations for everything else and fixes those four: it collects a
bundle's outputs after `finish_bundle`, gives each consumer only its own tag's elements, computes all
leaves in one graph (shared steps run once), and reads `ReadInputLines` as numbered lines.
"""

from __future__ import annotations

import collections

import dask.distributed as ddist
from apache_beam import DoFn, ParDo, TaggedOutput, pvalue
from apache_beam.internal import pickler
from apache_beam.pipeline import PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.runners.dask.transform_evaluator import (
    TRANSLATIONS,
    DaskBagOp,
    DaskBagWindowedIterator,
    Flatten,
    NoOp,
    OneReceiver,
    get_windowed_value,
)
from apache_beam.transforms import Create
from apache_beam.transforms.sideinputs import SideInputMap

from bench_assets.pipeline.input_lines import ReadInputLines, numbered_lines


def _run_bundle(items, serialized_fn: bytes, label: str, window_fn, side_inputs, args, kwargs) -> list:
    """Runs one Dask partition as one bundle; returns everything it emitted, finish_bundle included."""
    receivers = OneReceiver()
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(pickler.loads(serialized_fn)),  # each bundle gets its own DoFn instance
        _OutputHandler(
            window_fn=window_fn,
            main_receivers=receivers[None],
            tagged_receivers=receivers,
            per_element_output_counter=None,
            output_batch_converter=None,
            process_yields_batches=False,
            process_batch_yields_elements=False,
        ),
        context=DoFnContext(label, state=None),
        side_inputs=side_inputs,
        input_args=args,
        input_kwargs=kwargs,
        user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam(),
    )
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    # Downstream translations take plain values (they window them again), tagged ones still tagged.
    return [
        TaggedOutput(output.tag, output.value.value) if isinstance(output, TaggedOutput) else output.value
        for output in receivers.values
    ]


class _CompleteParDo(DaskBagOp):
    def apply(self, input_bag, side_inputs=None):
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        return input_bag.map(get_windowed_value, window_fn).map_partitions(
            _run_bundle, pickler.dumps(transform.fn), transform.label, window_fn, side_inputs, list(args), kwargs
        )


def _is_main_output(element) -> bool:
    return not isinstance(element, TaggedOutput)


def _with_tag(tag: str):
    return lambda element: isinstance(element, TaggedOutput) and element.tag == tag


def _untag(element: TaggedOutput):
    return element.value


def _select(bag, tag):
    """The elements of one output of the producing transform."""
    if tag is None:
        return bag.filter(_is_main_output)
    return bag.filter(_with_tag(tag)).map(_untag)


class _BagVisitor(PipelineVisitor):
    TRANSLATIONS = {**TRANSLATIONS, ParDo: _CompleteParDo}

    def __init__(self, bag_kwargs: dict):
        self.bag_kwargs = bag_kwargs
        self.bags = collections.OrderedDict()
        self.consumed = set()

    def visit_transform(self, node) -> None:
        op = self.TRANSLATIONS.get(node.transform.__class__, NoOp)(node, bag_kwargs=self.bag_kwargs)
        inputs = []
        for value in node.inputs:
            if isinstance(value, pvalue.PBegin):
                inputs.append(None)
                continue
            self.consumed.add(value.producer)
            if value.producer in self.bags:
                inputs.append(_select(self.bags[value.producer], value.tag))
        op_kwargs = {"input_bag": None, "side_inputs": None}
        if inputs:
            op_kwargs["input_bag"] = inputs[0] if len(inputs) == 1 and not isinstance(op, Flatten) else inputs
        if node.side_inputs:
            op_kwargs["side_inputs"] = [
                SideInputMap(
                    type(si),
                    si._view_options(),
                    DaskBagWindowedIterator(self.bags.get(si.pvalue.producer), si._window_mapping_fn),
                )
                for si in node.side_inputs
            ]
        self.bags[node] = op.apply(**op_kwargs)

    def leaves(self) -> list:
        return [bag for node, bag in self.bags.items() if node not in self.consumed and bag is not None]


class _ReadInputLinesOnLauncher(PTransformOverride):
    def matches(self, applied_ptransform) -> bool:
        return isinstance(applied_ptransform.transform, ReadInputLines)

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform):
        # The same elements ReadInputLines gives: (line number, the line's bytes without its line ending).
        return Create(list(numbered_lines(applied_ptransform.transform.path)))


class _ClosingResult(dask_runner.DaskRunnerResult):
    """Closes the client it opened once the pipeline is done."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()


class CompleteDaskRunner(dask_runner.DaskRunner):
    """Runs a pipeline on a Dask cluster (`--dask_client_address`), delivering every element."""

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(dask_runner.DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        client = ddist.Client(**dask_options)
        pipeline.replace_all([_ReadInputLinesOnLauncher(), *dask_overrides()])
        visitor = _BagVisitor(bag_kwargs)
        pipeline.visit(visitor)
        # One graph for all leaves, so that the steps they share are computed once.
        futures = client.compute(visitor.leaves())
        return _ClosingResult(client, futures)

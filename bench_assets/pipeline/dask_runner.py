"""Beam's DaskRunner, with the fixes it needs to deliver every element and use every worker (apache-beam 2.77).

Run on Beam's own DaskRunner, our pipelines lost items. Small pipelines showed three causes in
`apache_beam/runners/dask/`:

1. `apply_dofn_to_bundle` copies a bundle's outputs before `finish_bundle` runs, so whatever a DoFn emits
   there is dropped. BatchElements emits each bundle's last, partial batch there: those items vanished
   (682 of 1,003 elements came out of `Create | BatchElements(10, 100) | FlatMap`).
2. A ParDo's tagged outputs all land in one bag, and every consumer reads the whole bag: the consumer of the
   main output also received the dead-letter (`TaggedOutput`) elements, and the other way round.
3. Only the bag of the last visited transform is computed: any other branch ending in a sink never runs
   (of two writes of the same collection, one wrote nothing). Computing each leaf on its own instead runs
   the shared steps once per leaf: inference three times over.

Reading needs no fix: ReadInputLines is a Create of line chunks and a FlatMap, which Dask runs (Beam's
ReadFromText, an Impulse and a splittable DoFn, has no translation). A runner override cannot replace it
anyway: Pipeline.run round-trips a pipeline for a non-Fn-API runner through its proto, after which composite
transforms are plain PTransforms.

And it used one worker of many: a Dask partition is a bundle, every step after `Create` keeps its partitions,
and `Create` makes partitions of 128 elements. ReadInputLines creates chunks of 64 lines, so any input under
8,192 lines ran as one bundle on one worker. Each worker's tasks also ran torch on one thread: Dask's nanny
sets OMP_NUM_THREADS=1 in the workers it starts.

`CompleteDaskRunner` keeps Beam's translations for everything else and fixes those: it collects a bundle's
outputs after `finish_bundle`, gives each consumer only its own tag's elements, computes all leaves in one
graph (shared steps run once), splits each `Create` into partitions that spread over the workers' threads
(unless --dask_npartitions or --dask_partition_size say otherwise), and gives each task its share of its host's
cores as torch threads. A lost worker's tasks are recomputed by Dask; what a recomputed bundle writes must
therefore replace what the lost one wrote (see outputs.py).
"""

from __future__ import annotations

import collections
import math
import os
import sys

import dask.bag as db
import dask.distributed as ddist
from apache_beam import DoFn, ParDo, TaggedOutput, pvalue
from apache_beam.internal import pickler
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask.overrides import _Create, dask_overrides
from apache_beam.runners.dask.transform_evaluator import (
    TRANSLATIONS,
    Create,
    DaskBagOp,
    DaskBagWindowedIterator,
    Flatten,
    NoOp,
    OneReceiver,
    get_windowed_value,
)
from apache_beam.transforms.sideinputs import SideInputMap

# A partition of `Create` holds at most this many elements (Beam's own default size).
MAX_PARTITION_SIZE = 128
# How long a run waits for the scheduler before failing; a run can set --dask_connection_timeout.
CONNECT_TIMEOUT_S = 10.0


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> ddist.Client:
    """A client of the scheduler at `address`; fails within `timeout_s` (Dask retries for 30 s) naming it."""
    try:
        return ddist.Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"no Dask scheduler answered at dask_address {address!r} within {timeout_s:g} s: {error}"
        ) from error


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def threads_per_task(client: ddist.Client) -> dict[str, int]:
    """Torch threads for each task, by worker host: the host's cores shared among the task threads on it."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_usable_cores)
    task_threads = collections.Counter()
    for address, worker in workers.items():
        task_threads[_host(address)] += worker["nthreads"]
    return {_host(address): max(1, cores[address] // task_threads[_host(address)]) for address in workers}


def _use_task_threads(threads_by_host: dict[str, int]) -> None:
    # Set in the task's own thread: torch keeps OpenMP's thread count per calling thread.
    torch = sys.modules.get("torch")
    if torch is None or not threads_by_host:
        return
    try:
        host = _host(ddist.get_worker().address)
    except ValueError:  # not on a worker (a local scheduler)
        return
    if host in threads_by_host and torch.get_num_threads() != threads_by_host[host]:
        torch.set_num_threads(threads_by_host[host])


def _process_memory() -> tuple[int, int]:
    import psutil

    return os.getpid(), psutil.Process().memory_info().rss


def _run_bundle(
    items, serialized_fn: bytes, label: str, window_fn, side_inputs, args, kwargs, threads_by_host: dict
) -> list:
    """Runs one Dask partition as one bundle; returns everything it emitted, finish_bundle included."""
    receivers = OneReceiver()
    fn = pickler.loads(serialized_fn)  # each bundle gets its own DoFn instance
    _use_task_threads(threads_by_host)
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(fn),
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
            _run_bundle, pickler.dumps(transform.fn), transform.label, window_fn, side_inputs, list(args), kwargs,
            self.bag_kwargs["threads_by_host"],
        )


class _SpreadCreate(Create):
    """Beam's Create, in a multiple of the cluster's task threads partitions of at most MAX_PARTITION_SIZE."""

    def apply(self, input_bag, side_inputs=None):
        if "npartitions" in self.bag_kwargs or "partition_size" in self.bag_kwargs:
            return super().apply(input_bag, side_inputs)
        items = self.transform.values
        threads = self.bag_kwargs["task_threads"]
        npartitions = threads * math.ceil(len(items) / (threads * MAX_PARTITION_SIZE))
        return db.from_sequence(items, npartitions=max(1, min(npartitions, len(items))))


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
    TRANSLATIONS = {**TRANSLATIONS, ParDo: _CompleteParDo, _Create: _SpreadCreate}

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


class CompleteDaskRunner(dask_runner.DaskRunner):
    """Runs a pipeline on the Dask cluster of `client`, delivering every element; the caller closes the client."""

    def __init__(self, client: ddist.Client):
        super().__init__()
        self.client = client

    def worker_memory(self) -> dict[int, int]:
        """Resident bytes of each live worker process, by pid."""
        return dict(self.client.run(_process_memory, on_error="ignore").values())

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(dask_runner.DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        bag_kwargs["task_threads"] = max(1, sum(self.client.nthreads().values()))
        bag_kwargs["threads_by_host"] = threads_per_task(self.client)
        pipeline.replace_all(dask_overrides())
        visitor = _BagVisitor(bag_kwargs)
        pipeline.visit(visitor)
        # One graph for all leaves, so that the steps they share are computed once.
        return dask_runner.DaskRunnerResult(self.client, self.client.compute(visitor.leaves()))

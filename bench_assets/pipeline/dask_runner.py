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

Reading needs no fix: ReadInputLines is a Create of line chunks and a ParDo, which Dask runs (Beam's
ReadFromText, an Impulse and a splittable DoFn, has no translation). A runner override cannot replace it
anyway: Pipeline.run round-trips a pipeline for a non-Fn-API runner through its proto, after which composite
transforms are plain PTransforms.

And it ran steps one at a time, each over a whole partition: a partition's decoded images were all held at once,
and BatchElements timed appending each batch to a list instead of its inference downstream, so its adaptive
batch size grew to the maximum (on resnet101 at one thread, 0.29 s an image at batch 100 against 0.18 at 10).

And it used one worker of many: a Dask partition is a bundle, every step after `Create` keeps its partitions,
and `Create` makes partitions of 128 elements. ReadInputLines creates chunks of 64 lines, so any input under
8,192 lines ran as one bundle on one worker. Each worker's tasks also ran torch on one thread: Dask's nanny
sets OMP_NUM_THREADS=1 in the workers it starts. And each forward pass ran 1.4 times slower than in a plain process
(resnet101, one thread: 0.25 against 0.18 s an image): the nanny also sets MALLOC_TRIM_THRESHOLD_=65536, which
freezes glibc's mmap threshold at 128 KiB, so every activation buffer was mmap'd, page-faulted and unmapped again.

`CompleteDaskRunner` keeps Beam's translations for everything else and fixes those: it runs a ParDo and the
ParDos that alone read its main output as one task per partition, each element handed on as it is emitted
(Beam's fusion), collects a bundle's outputs after `finish_bundle`, gives each consumer only its own output's
elements, computes all leaves in one graph (shared steps run once), splits each `Create` into partitions that
spread over the workers' threads (unless --dask_npartitions or --dask_partition_size say otherwise), gives each
task its share of its host's cores as torch threads, and gives the worker glibc's thresholds back for large
buffers. A lost worker's tasks are recomputed by Dask; what a recomputed bundle writes must therefore replace what
the lost one wrote (see outputs.py).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import math
import os
import sys
from typing import NamedTuple

import dask.bag as db
import dask.distributed as ddist
from apache_beam import DoFn, ParDo, pvalue
from apache_beam.internal import pickler
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, Receiver, _OutputHandler
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask.overrides import _Create, dask_overrides
from apache_beam.runners.dask.transform_evaluator import (
    TRANSLATIONS,
    Create,
    DaskBagWindowedIterator,
    Flatten,
    NoOp,
    get_windowed_value,
)
from apache_beam.transforms.sideinputs import SideInputMap

from bench_assets.machine.fingerprint import usable_cores

# A partition of `Create` holds at most this many elements (Beam's own default size).
MAX_PARTITION_SIZE = 128
# How long a run waits for the scheduler before failing; a run can set --dask_connection_timeout.
CONNECT_TIMEOUT_S = 10.0
# glibc's mallopt parameters (malloc.h), and the largest mmap threshold it accepts on 64-bit (32 MiB).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LARGE_BUFFER_BYTES = 32 * 2**20


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> ddist.Client:
    """A client of the scheduler at `address`; fails within `timeout_s` (Dask retries for 30 s) naming it."""
    try:
        return ddist.Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as error:
        raise ConnectionError(
            f"no Dask scheduler answered at dask_address {address!r} within {timeout_s:g} s: {error}"
        ) from error


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def threads_per_task(client: ddist.Client) -> dict[str, int]:
    """Torch threads for each task, by worker host: the host's cores shared among the task threads on it."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(usable_cores)
    task_threads = collections.Counter()
    for address, worker in workers.items():
        task_threads[_host(address)] += worker["nthreads"]
    return {_host(address): max(1, cores[address] // task_threads[_host(address)]) for address in workers}


@functools.cache  # once per worker process: find_library runs ldconfig
def _keep_large_buffers() -> None:
    """Large allocations reuse the heap again, as in a process glibc's dynamic thresholds have tuned: buffers up
    to the mmap threshold's 64-bit maximum come from the heap, and freed memory above twice that returns to the
    OS (Dask's trim threshold of 64 KiB would return it after every free)."""
    path = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(path), "mallopt", None) if path else None
    if mallopt is not None:  # glibc only
        mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
        mallopt(M_TRIM_THRESHOLD, 2 * LARGE_BUFFER_BYTES)


def _prepare_worker(threads_by_host: dict[str, int]) -> None:
    try:
        host = _host(ddist.get_worker().address)
    except ValueError:  # not on a worker (a local scheduler)
        return
    _keep_large_buffers()
    # Set in the task's own thread: torch keeps OpenMP's thread count per calling thread.
    torch = sys.modules.get("torch")
    if torch is not None and host in threads_by_host and torch.get_num_threads() != threads_by_host[host]:
        torch.set_num_threads(threads_by_host[host])


def _process_memory() -> tuple[int, int]:
    import psutil

    return os.getpid(), psutil.Process().memory_info().rss


class _Stage(NamedTuple):
    """One ParDo of a fused chain, as the task that runs it needs it."""

    full_label: str
    label: str
    serialized_fn: bytes
    window_fn: object
    side_inputs: list | None
    args: list
    kwargs: dict


class _Output(NamedTuple):
    """An element a chain emits: the full label of the ParDo that emitted it, its output's tag (None: the main
    output) and the value."""

    full_label: str
    tag: str | None
    value: object


class _Collect(Receiver):
    """Keeps what a stage emits on one of its outputs, as the chain's result."""

    def __init__(self, outputs: list, full_label: str, tag: str | None):
        self._outputs, self._full_label, self._tag = outputs, full_label, tag

    def receive(self, windowed_value):
        self._outputs.append(_Output(self._full_label, self._tag, windowed_value.value))


class _Feed(Receiver):
    """Hands each element a stage emits on its main output straight to the next stage."""

    def __init__(self, invoker: DoFnInvoker):
        self._invoker = invoker

    def receive(self, windowed_value):
        self._invoker.invoke_process(windowed_value)


class _CollectByTag(dict):
    def __init__(self, outputs: list, full_label: str):
        super().__init__()
        self._outputs, self._full_label = outputs, full_label

    def __missing__(self, tag):
        self[tag] = _Collect(self._outputs, self._full_label, tag)
        return self[tag]


def _invoker(stage: _Stage, main_receiver: Receiver, tagged_receivers: dict) -> DoFnInvoker:
    fn = pickler.loads(stage.serialized_fn)  # each bundle gets its own DoFn instance
    return DoFnInvoker.create_invoker(
        DoFnSignature(fn),
        _OutputHandler(
            window_fn=stage.window_fn,
            main_receivers=main_receiver,
            tagged_receivers=tagged_receivers,
            per_element_output_counter=None,
            output_batch_converter=None,
            process_yields_batches=False,
            process_batch_yields_elements=False,
        ),
        context=DoFnContext(stage.label, state=None),
        side_inputs=stage.side_inputs,
        input_args=stage.args,
        input_kwargs=stage.kwargs,
        user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam(),
    )


def _run_chain(items, stages: list[_Stage], threads_by_host: dict) -> list[_Output]:
    """Runs one Dask partition through a chain of ParDos, one bundle each, each element handed on as soon as it
    is emitted; returns the tagged outputs of every stage and the last stage's main output, finish_bundle's
    included."""
    _prepare_worker(threads_by_host)
    outputs: list[_Output] = []
    invokers: list[DoFnInvoker] = []
    main_receiver: Receiver = _Collect(outputs, stages[-1].full_label, None)
    for stage in reversed(stages):
        invokers.insert(0, _invoker(stage, main_receiver, _CollectByTag(outputs, stage.full_label)))
        main_receiver = _Feed(invokers[0])
    for invoker in invokers:
        invoker.invoke_setup()
        invoker.invoke_start_bundle()
    for item in items:
        invokers[0].invoke_process(item)
    # Upstream first, so that what a stage emits as it finishes (BatchElements' last batch) is processed downstream.
    for invoker in invokers:
        invoker.invoke_finish_bundle()
    for invoker in invokers:
        invoker.invoke_teardown()
    return outputs


def _stage(node, side_inputs: list | None) -> _Stage:
    transform = node.transform
    args, kwargs = transform.raw_side_inputs
    main_input = next(iter(node.main_inputs.values()))
    window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
    return _Stage(node.full_label, transform.label, pickler.dumps(transform.fn), window_fn, side_inputs, list(args), kwargs)


class _SpreadCreate(Create):
    """Beam's Create, in a multiple of the cluster's task threads partitions of at most MAX_PARTITION_SIZE."""

    def apply(self, input_bag, side_inputs=None):
        if "npartitions" in self.bag_kwargs or "partition_size" in self.bag_kwargs:
            return super().apply(input_bag, side_inputs)
        items = self.transform.values
        threads = self.bag_kwargs["task_threads"]
        npartitions = threads * math.ceil(len(items) / (threads * MAX_PARTITION_SIZE))
        return db.from_sequence(items, npartitions=max(1, min(npartitions, len(items))))


def _is_output(element: _Output, full_label: str, tag: str | None) -> bool:
    return element.full_label == full_label and element.tag == tag


def _value(element: _Output):
    return element.value


def _is_pardo(node) -> bool:
    return node.transform.__class__ is ParDo


class _Consumers(PipelineVisitor):
    """The transforms that read each output (producer, tag), side inputs included."""

    def __init__(self):
        self.of = collections.defaultdict(list)

    def visit_transform(self, node) -> None:
        for value in node.inputs:
            if not isinstance(value, pvalue.PBegin):
                self.of[(value.producer, value.tag)].append(node)
        for side_input in node.side_inputs:
            self.of[(side_input.pvalue.producer, side_input.pvalue.tag)].append(node)

    def fused_consumer(self, node):
        """The ParDo that runs in `node`'s task: the only reader of `node`'s main output, reading nothing else."""
        readers = self.of.get((node, None), [])
        if len(readers) != 1:
            return None
        reader = readers[0]
        if not _is_pardo(reader) or len(reader.inputs) != 1 or reader.side_inputs:
            return None
        return reader


class _BagVisitor(PipelineVisitor):
    """Translates each transform into a Dask bag; a ParDo and the chain of ParDos that alone read its main output
    become one task per partition (Beam's fusion), so that elements stream through them."""

    TRANSLATIONS = {**TRANSLATIONS, _Create: _SpreadCreate}

    def __init__(self, bag_kwargs: dict, consumers: _Consumers):
        self.bag_kwargs = bag_kwargs
        self.consumers = consumers
        self.bags = collections.OrderedDict()

    def _select(self, producer, tag):
        """The elements of one output of `producer`."""
        bag = self.bags.get(producer)
        if bag is None or not _is_pardo(producer):
            return bag
        return bag.filter(functools.partial(_is_output, full_label=producer.full_label, tag=tag)).map(_value)

    def visit_transform(self, node) -> None:
        if node in self.bags:  # fused into its producer's chain, which was translated with it
            return
        inputs = []
        for value in node.inputs:
            if isinstance(value, pvalue.PBegin):
                inputs.append(None)
            elif value.producer in self.bags:
                inputs.append(self._select(value.producer, value.tag))
        side_inputs = [
            SideInputMap(
                type(side_input),
                side_input._view_options(),
                DaskBagWindowedIterator(
                    self._select(side_input.pvalue.producer, side_input.pvalue.tag), side_input._window_mapping_fn
                ),
            )
            for side_input in node.side_inputs
        ] or None
        if _is_pardo(node):
            self._translate_chain(node, inputs[0], side_inputs)
            return
        op = self.TRANSLATIONS.get(node.transform.__class__, NoOp)(node, bag_kwargs=self.bag_kwargs)
        input_bag = None
        if inputs:
            input_bag = inputs[0] if len(inputs) == 1 and not isinstance(op, Flatten) else inputs
        self.bags[node] = op.apply(input_bag=input_bag, side_inputs=side_inputs)

    def _translate_chain(self, head, input_bag, side_inputs) -> None:
        chain = [head]
        while (reader := self.consumers.fused_consumer(chain[-1])) is not None:
            chain.append(reader)
        stages = [_stage(head, side_inputs), *(_stage(node, None) for node in chain[1:])]
        bag = input_bag.map(get_windowed_value, stages[0].window_fn).map_partitions(
            _run_chain, stages, self.bag_kwargs["threads_by_host"]
        )
        for node in chain:
            self.bags[node] = bag

    def leaves(self) -> list:
        """The bags whose outputs nothing reads, each once."""
        read = {producer for producer, _ in self.consumers.of}
        leaves = {id(bag): bag for node, bag in self.bags.items() if node not in read and bag is not None}
        return list(leaves.values())


class CompleteDaskRunner(dask_runner.DaskRunner):
    """Runs a pipeline on the Dask cluster of `client`, delivering every element; the caller closes the client."""

    def __init__(self, client: ddist.Client):
        super().__init__()
        self.client = client

    def worker_memory(self) -> dict[int, int]:
        """Resident bytes of each live worker process, by pid."""
        return dict(self.client.run(_process_memory, on_error="ignore").values())

    def worker_cores(self) -> int:
        """The cores the workers run on: each worker host's usable cores, once per host."""
        cores_by_host = {}
        for address, cores in self.client.run(usable_cores).items():
            cores_by_host[_host(address)] = max(cores, cores_by_host.get(_host(address), 0))
        return sum(cores_by_host.values())

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(dask_runner.DaskOptions).get_all_options(drop_default=True, current_only=True)
        bag_kwargs = dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        bag_kwargs["task_threads"] = max(1, sum(self.client.nthreads().values()))
        bag_kwargs["threads_by_host"] = threads_per_task(self.client)
        pipeline.replace_all(dask_overrides())
        consumers = _Consumers()
        pipeline.visit(consumers)
        visitor = _BagVisitor(bag_kwargs, consumers)
        pipeline.visit(visitor)
        # One graph for all leaves, so that the steps they share are computed once.
        return dask_runner.DaskRunnerResult(self.client, self.client.compute(visitor.leaves()))

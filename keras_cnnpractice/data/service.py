"""Preprocessing on tf.data service workers: `DataService`, what
`build_pipeline` needs to send its batches through one, and the servers
(`kcp-data-service dispatcher|worker`).

When one host's cores cannot decode and augment fast enough for its
accelerators (`kcp-doctor` says the job is input-bound), the pipeline up
to and including augmentation and batching can run on other processes or
machines: a *dispatcher* hands out the work, any number of *workers* run
the pipeline, and the trainer only receives finished batches
(`tf.data.experimental.service`).

Sharding (`DataService.sharding`), as tf.data service defines it:

* `"dynamic"` (default): the dispatcher hands the source's splits (files,
  examples, or for a raw pack chunks of `SPLIT_RECORDS` records) to
  workers as they ask for them: within one epoch each example is
  produced at most once. A worker that dies takes the splits it was
  given, and not yet delivered, with it: those examples are lost for that
  epoch (the others go on).
* `"off"`: every worker runs the whole pipeline; the trainer receives
  each worker's full epoch (with W workers, W times each example per
  epoch, each worker in its own order).
* `"static"`: each worker reads a fixed share of the files (or examples)
  by its index: the dispatcher must list the workers' addresses
  (`kcp-data-service dispatcher --worker_addresses=...`), and a lost
  worker's share is lost until it comes back.

The dispatcher and the workers must know every op of the pipeline: both
servers load this package's op library (the fused augmentation and the
pack reader are compiled ops) before they serve.

Imports inside functions: TensorFlow, so that the training flags (which
check `--data_service` with `parse_address`) are read without it.
"""

import dataclasses
import re
import socket
import time

from keras_cnnpractice._validate import check_number

SHARDING_POLICIES = ("dynamic", "off", "static")
COMPRESSIONS = ("none", "auto")
TRANSFER_DTYPES = ("float16", "float32")
_ADDRESS = re.compile(r"^grpc://(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):"
                      r"(?P<port>\d{1,5})$")


class ServiceUnavailableError(RuntimeError):
    """The dispatcher of a tf.data service did not answer in time."""


def parse_address(address):
    """`(host, port)` of a `grpc://HOST:PORT` dispatcher address.

    Raises:
        ValueError: another form, or a port outside 1..65535.
    """
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if match is None or not 0 < int(match.group("port")) < 65536:
        raise ValueError(f"A tf.data service address must be grpc://HOST:PORT"
                         f" (port 1-65535). Received: {address!r}")
    return match.group("host").strip("[]"), int(match.group("port"))


@dataclasses.dataclass(frozen=True)
class DataService:
    """A tf.data service to run the input pipeline on.

    Attributes:
        address: the dispatcher, `grpc://HOST:PORT`.
        sharding: `"dynamic"`, `"off"` or `"static"` (see the module
            docstring for what each guarantees).
        job_name: the name every consumer of one training run shares (the
            replicas of a multi-worker strategy read one job together);
            None gives each iteration a job of its own.
        timeout_s: how long to wait for the dispatcher to accept a
            connection before `ServiceUnavailableError`.
        compression: `"none"` (default) or `"auto"` (tf.data service's
            snappy compression of each element): augmented float32
            batches hardly compress, and compressing them cost the workers
            CPU time (benchmarks/results/data_service.md).
        transfer_dtype: `"float16"` (default): float32 tensors travel from
            the workers as float16 and are float32 again in the trainer:
            half the bytes to send and receive, which is most of a
            worker's and a trainer's work (pixel values in [0, 255] come
            back within 0.0625 of the worker's, whole numbers exactly);
            `"float32"`: as they are.

    Raises:
        ValueError: a bad value, naming it.
    """

    address: str
    sharding: str = "dynamic"
    job_name: object = None
    timeout_s: float = 120.0
    compression: str = "none"
    transfer_dtype: str = "float16"

    def __post_init__(self):
        parse_address(self.address)
        if self.sharding not in SHARDING_POLICIES:
            raise ValueError(f"sharding must be one of "
                             f"{', '.join(SHARDING_POLICIES)}. Received: "
                             f"sharding={self.sharding!r}")
        if self.job_name is not None and not (
                isinstance(self.job_name, str) and self.job_name):
            raise ValueError(f"job_name must be None or a non-empty string. "
                             f"Received: job_name={self.job_name!r}")
        check_number("timeout_s", self.timeout_s, low=0, low_open=True)
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of "
                             f"{', '.join(COMPRESSIONS)}. Received: "
                             f"compression={self.compression!r}")
        if self.transfer_dtype not in TRANSFER_DTYPES:
            raise ValueError(f"transfer_dtype must be one of "
                             f"{', '.join(TRANSFER_DTYPES)}. Received: "
                             f"transfer_dtype={self.transfer_dtype!r}")

    def wait(self):
        """Returns once the dispatcher accepts a TCP connection.

        Raises:
            ServiceUnavailableError: it did not within `timeout_s` (tf.data
                would otherwise retry for minutes).
        """
        host, port = parse_address(self.address)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with socket.create_connection(
                        (host, port), timeout=max(0.1, min(
                            2.0, deadline - time.monotonic()))):
                    return
            except OSError as err:
                if time.monotonic() >= deadline:
                    raise ServiceUnavailableError(
                        f"No tf.data service dispatcher at {self.address} "
                        f"after {self.timeout_s:g} s ({err.strerror or err})"
                        ) from None
                time.sleep(0.2)

    def distribute(self, dataset):
        """`dataset` read through the service: its pipeline runs on the
        workers (after `wait`)."""
        return self.read(self.register(dataset), dataset.element_spec)

    def register(self, dataset):
        """Registers `dataset` with the dispatcher (after `wait`) and
        returns its id (a string, to be captured by functions that run on
        other tasks), for `read`."""
        import tensorflow as tf
        self.wait()
        if self.transfer_dtype == "float16":
            dataset = _cast_elements(dataset, tf.float32, tf.float16)
        dataset_id = tf.data.experimental.service.register_dataset(
            self.address, dataset,
            compression=None if self.compression == "none" else "AUTO")
        return dataset_id.numpy().decode()

    def read(self, dataset_id, element_spec):
        """The dataset of a registered id (`register`), read through the
        service with this sharding and job name: runs where no service
        dataset can be built, e.g. on the workers of a parameter-server
        cluster, whose dataset functions cannot reach the coordinator's
        resources (the augmentation's seed)."""
        import tensorflow as tf
        policy = tf.data.experimental.service.ShardingPolicy
        mode = {"dynamic": policy.DYNAMIC, "off": policy.OFF,
                "static": policy.FILE_OR_DATA}[self.sharding]
        sent = element_spec
        if self.transfer_dtype == "float16":
            sent = tf.nest.map_structure(
                lambda spec: tf.TensorSpec(spec.shape, tf.float16)
                if spec.dtype == tf.float32 else spec, element_spec)
        dataset = tf.data.experimental.service.from_dataset_id(
            processing_mode=mode, service=self.address,
            dataset_id=dataset_id, element_spec=sent, job_name=self.job_name)
        if sent == element_spec:
            return dataset
        return _cast_elements(dataset, tf.float16, tf.float32)


def _cast_elements(dataset, source, target):
    """`dataset` with its `source`-typed tensors cast to `target`."""
    import tensorflow as tf

    def cast(*element):
        element = tf.nest.map_structure(
            lambda t: tf.cast(t, target) if t.dtype == source else t,
            element)
        return element if len(element) > 1 else element[0]

    return dataset.map(cast, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True)


def _load_ops():
    """Registers this package's compiled ops in this process: the
    dispatcher (which reads the pipeline's graph to split it) and the
    workers (which run it) must know every op in it."""
    from keras_cnnpractice.custom_ops import _loader
    _loader.load_op_library()


def start_dispatcher(port=0, work_dir=None, worker_addresses=None):
    """Starts a dispatcher in this process and returns its server.

    Args:
        port: the port to serve on (0: a free one; see `server.target`).
        work_dir: a folder for the dispatcher's journal: with one, it runs
            in fault-tolerant mode and a restarted dispatcher resumes its
            jobs from the journal.
        worker_addresses: `HOST:PORT` of every worker, needed for
            `"static"` sharding (and only then).
    """
    import tensorflow as tf
    _load_ops()
    service = tf.data.experimental.service
    return service.DispatchServer(service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=bool(work_dir),
        worker_addresses=worker_addresses))


def start_worker(dispatcher, port=0, host="localhost"):
    """Starts a worker in this process, registered with `dispatcher`
    (`grpc://HOST:PORT`), and returns its server."""
    import tensorflow as tf
    _load_ops()
    dispatcher_host, dispatcher_port = parse_address(dispatcher)
    service = tf.data.experimental.service
    return service.WorkerServer(service.WorkerConfig(
        dispatcher_address=f"{dispatcher_host}:{dispatcher_port}",
        worker_address=f"{host}:%port%", port=port))

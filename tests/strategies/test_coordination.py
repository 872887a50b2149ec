"""The private TensorFlow API `strategies/_coordination.py` relies on is
still there: this fails, naming what moved, when TensorFlow changes it."""

import inspect

from keras_cnnpractice.strategies import _coordination


def test_the_private_names_exist_with_the_arguments_used():
    configure = _coordination.context.Context.configure_coordination_service
    parameters = inspect.signature(configure).parameters
    for name in ("service_type", "service_leader", "coordinated_jobs",
                 "cluster_register_timeout_in_ms"):
        assert name in parameters, name
    assert callable(_coordination.multi_worker_util.coordination_leader)
    job = _coordination.coordination_config_pb2.CoordinatedJob(
        name="worker", num_tasks=2)
    assert (job.name, job.num_tasks) == ("worker", 2)
    fields = _coordination.coordination_config_pb2.CoordinationServiceConfig \
        .DESCRIPTOR.fields_by_name
    assert "cluster_register_with_barrier" in fields
    assert "cluster_register_timeout_in_ms" in fields


def test_the_leader_of_a_cluster():
    import tensorflow as tf
    spec = tf.train.ClusterSpec({"worker": ["a:1", "b:2"]})
    assert _coordination.multi_worker_util.coordination_leader(spec) == \
        "/job:worker/replica:0/task:0"

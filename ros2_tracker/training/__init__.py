"""Training of the re-ID embedder: identity crops, P x K sampling, similarity losses, evaluation, loop.

* :mod:`~ros2_tracker.training.config`: :class:`ReidTrainConfig` (no heavy imports);
* :mod:`~ros2_tracker.training.reid_data`: crops cut from MOTChallenge ground truth, the split by
  sequence and identity, :class:`PKBatchSampler` (numpy, OpenCV);
* :mod:`~ros2_tracker.training.mining` and :mod:`~ros2_tracker.training.losses`: batch-hard,
  semi-hard and distance-weighted selection; contrastive, triplet, multi-similarity and Group Loss
  (torch);
* :mod:`~ros2_tracker.training.reid_eval`: rank-1 / mAP of queries against a gallery (numpy);
* :mod:`~ros2_tracker.training.train_reid`: the loop, checkpoints, curve and ONNX export (torch).

Importing this package imports none of them; torch is loaded only by the modules that need it.
"""

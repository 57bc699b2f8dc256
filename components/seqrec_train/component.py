"""seqrec_train: dataset -> SASRec-style sequence recommender (model dir) + held-out metrics.

The model directory is what `SeqRecModel.load` reads (nearline caches its top items; `seren
explore` restricts it to the user's novel clusters). Metrics compare it with popularity on the
next new item and, restricted to clusters new to each user, on the next novel-cluster engagement:
by the interest clusters when the optional `clusters` artifact is wired, else by item category.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import SEREN_IMAGE


@dsl.component(base_image=SEREN_IMAGE, install_kfp_package=False)
def seqrec_train(
    dataset: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    clusters: Input[Artifact] = None,
    epochs: int = 200,
    patience: int = 5,
    max_len: int = 50,
    dim: int = 64,
    n_blocks: int = 2,
    loss: str = "sampled_softmax",
    learning_rate: float = 0.003,
    seed: int = 0,
):
    """Early stopping on validation HR@10 (chronological split of positives); loss sampled_softmax | bce."""
    from seren.exploration.seqrec import train_and_evaluate

    values = train_and_evaluate(
        dataset.path,
        model.path,
        clusters_dir=clusters.path if clusters is not None else None,
        epochs=epochs,
        patience=patience,
        max_len=max_len,
        dim=dim,
        n_blocks=n_blocks,
        loss=loss,
        lr=learning_rate,
        seed=seed,
        progress=False,
    )
    model.metadata["framework"] = "torch"
    model.metadata["best_epoch"] = int(values["best_epoch"])
    for key, value in values.items():
        metrics.log_metric(key, value)

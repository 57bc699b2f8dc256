"""seren-exploration: LLM interest exploration (RecSys'24) with feedback alignment (2025).

ingest -> clusters -> transitions -> novelty_finetune ┐
                   │              └> feedback_alignment ┴> ParallelFor(pair_table_shard) ─> pair_table_merge ┐
                   └──────────────────────────────────> seqrec_train ─────────────────────────────────────────┴> exploration_evaluate

The pair table is built by `pair_table_shards` tasks (a ParallelFor, each retried; each computes
its round-robin share of the table's fixed parts, resumable in work_dir) and a merge task (the
Collected fan-in) that checks every pair is present exactly once with valid novel clusters.

The pair table (top-n novel clusters for every cluster pair) is what serving reads, from Feast
(`push_to_feast`) or from the published directory `seren explore` uses, together with the
sequence recommender that is restricted to the novel clusters at query time (seqrec_train).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Metrics, Model

from components.clusters.component import clusters as clusters_op
from components.exploration_evaluate.component import exploration_evaluate
from components.feedback_alignment.component import feedback_alignment
from components.ingest.component import ingest
from components.novelty_finetune.component import novelty_finetune
from components.pair_table.component import pair_table_merge, pair_table_shard, pair_table_tasks
from components.seqrec_train.component import seqrec_train
from components.transitions.component import transitions as transitions_op

# Local runs (`seren pipeline run exploration --local`, the demo): the generator's default size,
# 6x4 = 24 clusters (576 pairs) so the SmolLM2 pair table finishes in minutes on a laptop CPU.
DEFAULT_PARAMS: dict = {
    "source": "synthetic",
    "n_users": 500,
    "n_items": 800,
    "seed": 0,
    "n_top": 6,
    "n_sub": 4,
    "max_steps": 120,
    "seqrec_epochs": 60,
}


class Outputs(NamedTuple):
    table: Dataset
    model: Model
    report: Markdown
    metrics: Metrics


@dsl.pipeline(
    name="seren-exploration",
    description="Interest clusters with language descriptions, novel-transition fine-tuning of an LLM with constrained decoding, feedback alignment (best-of-n), and the all-pairs novel-interest table pushed to Feast.",
)
def pipeline(
    source: str = "synthetic",
    path: str = "",
    items_path: str = "",
    mapping: dict = {},  # noqa: B006 - KFP needs a literal default
    items_mapping: dict = {},  # noqa: B006
    n_users: int = 500,
    n_items: int = 800,
    seed: int = 0,
    n_top: int = 8,
    n_sub: int = 5,
    naming_backend: str = "none",
    min_count: int = 1,
    test_frac: float = 0.2,
    base_model: str = "smollm2",
    max_steps: int = 200,
    learning_rate: float = 0.001,
    lora_r: int = 16,
    min_support: int = 3,
    n: int = 3,
    n_candidates: int = 10,
    use_aligner: bool = True,
    method: str = "auto",
    work_dir: str = "",
    push_to_feast: bool = False,
    feast_target: str = "",
    feast_data_dir: str = "",
    seqrec_epochs: int = 200,
    seqrec_patience: int = 5,
    publish_dir: str = "",
    pair_table_shards: int = 1,
) -> Outputs:
    """n_top x n_sub = number of interest clusters (pairs grow as its square); method auto|score|beam;
    publish_dir "" = $SEREN_HOME/exploration ("none" to skip)."""
    data = ingest(
        source=source,
        path=path,
        items_path=items_path,
        mapping=mapping,
        items_mapping=items_mapping,
        n_users=n_users,
        n_items=n_items,
        seed=seed,
    ).set_display_name("ingest + validate")
    cl = clusters_op(
        dataset=data.outputs["dataset"], n_top=n_top, n_sub=n_sub, naming_backend=naming_backend, seed=seed
    ).set_display_name("interest clusters")
    tr = transitions_op(
        dataset=data.outputs["dataset"], clusters=cl.outputs["clusters"], min_count=min_count, test_frac=test_frac
    ).set_display_name("novel transitions")
    ft = novelty_finetune(
        transitions=tr.outputs["transitions"],
        clusters=cl.outputs["clusters"],
        base_model=base_model,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lora_r=lora_r,
        seed=seed,
    ).set_display_name("novelty LLM fine-tune")
    al = feedback_alignment(
        dataset=data.outputs["dataset"],
        clusters=cl.outputs["clusters"],
        transitions=tr.outputs["transitions"],
        min_support=min_support,
        seed=seed,
    ).set_display_name("feedback alignment")
    fan = pair_table_tasks(tasks=pair_table_shards).set_display_name("pair-table tasks")
    with dsl.ParallelFor(fan.output) as task:
        pts = pair_table_shard(
            model=ft.outputs["model"],
            aligner=al.outputs["aligner"],
            task=task,
            tasks=pair_table_shards,
            n=n,
            n_candidates=n_candidates,
            use_aligner=use_aligner,
            method=method,
            work_dir=work_dir,
        ).set_display_name("pair-table shard")
        pts.set_retry(num_retries=2, backoff_duration="30s", backoff_factor=2.0)  # resumes from finished parts
    pt = pair_table_merge(
        parts=dsl.Collected(pts.outputs["part"]),
        results=dsl.Collected(pts.outputs["Output"]),
        push_to_feast=push_to_feast,
        feast_target=feast_target,
        feast_data_dir=feast_data_dir,
    ).set_display_name("pair table (merge + validate)")
    pt.set_caching_options(False)  # may push to Feast (external state)
    sr = seqrec_train(
        dataset=data.outputs["dataset"],
        clusters=cl.outputs["clusters"],
        epochs=seqrec_epochs,
        patience=seqrec_patience,
        seed=seed,
    ).set_display_name("sequence recommender")
    ev = exploration_evaluate(
        dataset=data.outputs["dataset"],
        clusters=cl.outputs["clusters"],
        transitions=tr.outputs["transitions"],
        model=ft.outputs["model"],
        aligner=al.outputs["aligner"],
        table=pt.outputs["table"],
        seqrec=sr.outputs["model"],
        n=n,
        seed=seed,
        publish_dir=publish_dir,
    ).set_display_name("evaluate + publish")
    ev.set_caching_options(False)  # publishes outside the artifact store
    return Outputs(
        table=pt.outputs["table"],
        model=ft.outputs["model"],
        report=ev.outputs["markdown"],
        metrics=ev.outputs["metrics"],
    )

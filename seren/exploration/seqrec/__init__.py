"""SASRec-style sequence recommender, restricted to novel interest clusters at query time.

The exploration system (RecSys'24) picks a *novel* cluster for a user from the pair table and
then lets a transformer sequence recommender choose items inside it; nearline caches its top items.

Model: item embeddings (shared with the output layer) + learned positions counted from the most
recent item, pre-LN causal self-attention blocks, trained on each user's positively engaged items
(`seren.data.is_positive`) in time order to predict the next item at every position. Loss: sampled
softmax over `n_negatives` uniform negatives shared by the batch (exact full softmax when that
covers the catalogue) or BCE with one uniform negative per position. CPU fp32 by default.

Split (leak-free): `seren.data.split.chronological_split` of the *positive* events per user.
Training sees only the train part; early stopping watches HR@k on validation (history = train,
a hit when any validation item the user has not engaged with before is in the top k); `evaluate_seqrec`
reports the test part (history = train + validation). Recommendations exclude seen items by
default, so the evaluated target is the next *new* item (repeat engagements are >50% of the
synthetic positives and no exclude-seen recommender can hit them).

Query-time behaviour (documented fallbacks):
* history items outside the vocabulary (not in the training positives) are ignored and counted
  in `SeqRecModel.counters["unknown_history_items"]`;
* a history that is empty after that gets the training popularity ranking (scores = popularity
  share, not logits), counted in `counters["popularity_fallbacks"]`;
* `allowed_item_ids` masks the catalogue (e.g. items of the user's novel clusters); allowed ids
  outside the vocabulary cannot be scored and are skipped; an empty allowed set returns [].

Files in the model directory (each written atomically): `model.pt` (weights + config + item-id
vocabulary + popularity in one file, so they can never disagree), `checkpoint.pt` (resumable
training state: last weights, optimizer, RNG states, best weights, early-stopping counters),
`config.json` and `metrics.json` (readable copies). `train_seqrec` on a directory whose checkpoint
has the same settings and data resumes from it (a finished run returns at once).

Modules: `data` (config, split, histories), `model` (network, `SeqRecModel`), `train`
(`train_seqrec`, checkpoints), `evaluate` (`evaluate_seqrec`, `train_and_evaluate`); the names below
are re-exported so `from seren.exploration.seqrec import X` keeps working.
"""

from seren.exploration.seqrec.data import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    LOSSES,
    METRICS_FILE,
    MODEL_FILE,
    Recs,
    SeqRecConfig,
    SeqSplit,
    next_new_item,
    novel_cluster_items,
    positive_events,
    split_sequences,
    torch_threads,
    user_histories,
)
from seren.exploration.seqrec.evaluate import evaluate_seqrec, train_and_evaluate
from seren.exploration.seqrec.model import SASRec, SeqRecModel
from seren.exploration.seqrec.train import _val_hr, train_seqrec

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "LOSSES",
    "METRICS_FILE",
    "MODEL_FILE",
    "Recs",
    "SASRec",
    "SeqRecConfig",
    "SeqRecModel",
    "SeqSplit",
    "_val_hr",
    "evaluate_seqrec",
    "next_new_item",
    "novel_cluster_items",
    "positive_events",
    "split_sequences",
    "torch_threads",
    "train_and_evaluate",
    "train_seqrec",
    "user_histories",
]

#!/usr/bin/env bash
# LLaMA-Factory 0.9.3 as a consumer of `dialforge export --to llamafactory`: builds its own venv
# (.venv-llamafactory: transformers 4.52, datasets <=3.6 with pyarrow<20, torch pinned to the
# 2.13.0 CPU wheel by a constraints file so no resolver pulls CUDA torch), builds a tiny Llama
# model inside that venv (transformers 4.52 cannot load a model saved by transformers 5), exports
# a plain, a system-prompt and a tool-call dataset with dialforge, and runs `llamafactory-cli train`
# for 1 step on each with no edit to the exported files.
#   scripts/check_llamafactory.sh            install (once) and check
#   scripts/check_llamafactory.sh install    only build the venv
# Work files go to $WORK (default /tmp/dialforge-llamafactory). Exit status: 0 when all three train.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VENV=${LF_VENV:-$ROOT/.venv-llamafactory}
WORK=${WORK:-/tmp/dialforge-llamafactory}
DIALFORGE=${DIALFORGE:-$ROOT/.venv/bin/dialforge}
LF_VERSION=0.9.3
stamp="$VENV/.llamafactory-$LF_VERSION"

if [ ! -f "$stamp" ]; then
  echo "== building $VENV (llamafactory==$LF_VERSION)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  cons="$VENV/constraints.txt"
  printf '%s\n' "torch==2.13.0" "transformers==4.52.4" "pyarrow<20" "datasets<=3.6.0" >"$cons"
  pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
  pip install --upgrade pip
  pip install -c "$cons" "torch==2.13.0"
  pip install -c "$cons" "llamafactory==$LF_VERSION"
  touch "$stamp"
fi
"$VENV/bin/python" -c "import llamafactory, transformers, datasets, torch; print('llamafactory', llamafactory.__version__, '| transformers', transformers.__version__, '| datasets', datasets.__version__, '| torch', torch.__version__)"
[ "${1:-}" = install ] && exit 0

mkdir -p "$WORK"
echo "== exporting with dialforge"
"$DIALFORGE" export "$ROOT/data/llamafactory/glaive_toolcall_en_demo.json" --to llamafactory --out "$WORK/data" --name df_tools
"$DIALFORGE" convert "$ROOT/data/oasst/en_100_tree.jsonl" "$WORK/oasst.jsonl" --from oasst-best >/dev/null
"$DIALFORGE" export "$WORK/oasst.jsonl" --to llamafactory --out "$WORK/data" --name df_plain
# a system prompt on every other conversation (obviously synthetic): the `system` column, null in half the rows
"$ROOT/.venv/bin/python" - "$WORK/oasst.jsonl" "$WORK/oasst_system.jsonl" <<'PYEOF'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as g:
    for i, line in enumerate(f):
        rec = json.loads(line)
        if i % 2 == 0:
            rec["messages"].insert(0, {"role": "system", "content": "SYNTHETIC system prompt for the LLaMA-Factory check."})
        g.write(json.dumps(rec) + "\n")
PYEOF
"$DIALFORGE" export "$WORK/oasst_system.jsonl" --to llamafactory --out "$WORK/data" --name df_system
"$DIALFORGE" check "$WORK/data" --for llamafactory
echo "dataset_info.json:"; cat "$WORK/data/dataset_info.json"; echo

echo "== tiny Llama model built inside $VENV"
"$VENV/bin/python" - "$WORK/data" "$WORK/tiny" <<'PYEOF'
import json, sys
from pathlib import Path
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
import torch

data, out = Path(sys.argv[1]), Path(sys.argv[2])
texts = []
for f in data.glob("*.json"):
    if f.name == "dataset_info.json":
        continue
    for r in json.loads(f.read_text()):
        texts += [t["value"] for t in r["conversations"]] + [r.get("tools") or "", r.get("system") or ""]
specials = ["<pad>", "<|im_end|>", "<|im_start|>", "<|endoftext|>"]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1024, special_tokens=specials,
                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>",
                             additional_special_tokens=["<|im_start|>", "<|endoftext|>"])
cfg = LlamaConfig(vocab_size=len(hf), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  eos_token_id=hf.eos_token_id, pad_token_id=hf.pad_token_id, tie_word_embeddings=False)
torch.manual_seed(0)
LlamaForCausalLM(cfg).save_pretrained(out)
hf.save_pretrained(out)
print("tiny model:", out, "vocab", len(hf))
PYEOF

status=0
for ds in df_plain df_system df_tools; do
  echo "== llamafactory-cli train: $ds (1 step)"
  cat >"$WORK/$ds.yaml" <<YAML
model_name_or_path: $WORK/tiny
stage: sft
do_train: true
finetuning_type: full
dataset: $ds
dataset_dir: $WORK/data
template: qwen
cutoff_len: 1024
max_steps: 1
per_device_train_batch_size: 2
gradient_accumulation_steps: 1
learning_rate: 1.0e-4
logging_steps: 1
output_dir: $WORK/out-$ds
overwrite_output_dir: true
overwrite_cache: true
preprocessing_num_workers: 1
dataloader_num_workers: 0
report_to: none
save_strategy: "no"
YAML
  if (cd "$WORK" && DISABLE_VERSION_CHECK=1 HF_HUB_OFFLINE=1 "$VENV/bin/llamafactory-cli" train "$WORK/$ds.yaml" >"$WORK/$ds.log" 2>&1); then
    grep -E "Num examples|train_loss|'loss'|Skipping|KeyError|Error" "$WORK/$ds.log" | head -20
    echo "$ds: trained 1 step (log $WORK/$ds.log)"
  else
    tail -30 "$WORK/$ds.log"
    echo "$ds: FAILED (log $WORK/$ds.log)"
    status=1
  fi
done
exit $status

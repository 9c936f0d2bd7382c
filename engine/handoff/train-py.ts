/**
 * train.py of a hand-off folder: a fixed script that reads handoff.json (the project's settings in PEFT's and
 * transformers' own names), so everything project-specific is data and the script is the same for every project.
 */
export const TRAIN_PY = String.raw`#!/usr/bin/env python3
"""Trains an Adapter Studio project with transformers + PEFT (+ TRL for causal LM), as handoff.json describes.

Writes PEFT checkpoints, trainer_state.json and the studio's metrics.jsonl into --output-dir; bring the folder
back with: studio import-run <this folder> --project <project>.
"""
import argparse
import datetime
import json
import os
import socket
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value):
    return float(value) if isinstance(value, (int, float)) else 0.0


def process_group():
    import torch.distributed as dist

    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


def versions():
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def parse_args(cfg):
    p = argparse.ArgumentParser(description="Train the Adapter Studio project " + repr(cfg["project"]))
    p.add_argument("--model", default=os.environ.get("STUDIO_MODEL", cfg["model"]),
                   help="model folder or Hugging Face id (default: $STUDIO_MODEL, else the project's model path)")
    p.add_argument("--output-dir", default=str(HERE / "output"), help="where checkpoints and the adapter go")
    p.add_argument("--max-steps", type=int, default=None, help="override the optimizer steps (a smoke test)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")
    return p.parse_args()


def make_callback(TrainerCallback, cfg, out_dir, info):
    class StudioMetrics(TrainerCallback):
        """Writes the studio's metrics.jsonl events (engine/common/train-events.ts) beside trainer_state.json."""

        def __init__(self):
            self.path = Path(out_dir) / "metrics.jsonl"
            self.start = time.time()
            self.first_step = 0
            self.last_eval = (None, None)

        def write(self, state, event):
            if not state.is_world_process_zero:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {"type": event.pop("type"), "time": now(), **event}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.time()
            self.first_step = state.global_step
            if state.is_world_process_zero:
                # Where the job ran, for the run's origin when studio import-run brings the folder back.
                where = {"runId": cfg["runId"], "project": cfg["project"], "method": cfg["method"],
                         "strategy": cfg["strategy"], "host": socket.gethostname(), "processes": args.world_size,
                         "device": info["backend"].split("/")[0], "processGroup": process_group(),
                         "startedAt": now(), "versions": versions()}
                Path(out_dir).mkdir(parents=True, exist_ok=True)
                (Path(out_dir) / "handoff-run.json").write_text(json.dumps(where, indent=2) + "\n", encoding="utf-8")
            event = {"type": "run-started", "runId": cfg["runId"], "step": state.global_step,
                     "totalSteps": max(1, state.max_steps), "method": cfg["method"], "task": cfg["task"],
                     **info}
            if state.global_step > 0:
                event["resumedFrom"] = state.global_step
            self.write(state, event)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            elapsed = max(time.time() - self.start, 1e-9)
            done = max(state.global_step - self.first_step, 1)
            self.write(state, {"type": "step", "step": state.global_step, "epoch": number(logs.get("epoch")),
                               "loss": number(logs.get("loss")), "lr": number(logs.get("learning_rate")),
                               "gradNorm": number(logs.get("grad_norm")),
                               "tokensPerSec": number(state.num_input_tokens_seen) / elapsed,
                               "etaSec": max(0.0, elapsed / done * (state.max_steps - state.global_step))})

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            values = {k[len("eval_"):] if k.startswith("eval_") else k: float(v)
                      for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and k != "epoch"}
            self.last_eval = (state.global_step, metrics)
            self.write(state, {"type": "eval", "step": state.global_step, "metrics": values})

        def on_save(self, args, state, control, **kwargs):
            self.write(state, {"type": "checkpoint-saved", "step": state.global_step,
                               "path": "checkpoint-%d" % state.global_step})

        def finished(self, state, metrics):
            event = {"type": "finished", "step": state.global_step, "durationSec": time.time() - self.start,
                     "reason": "early-stopping" if state.global_step < state.max_steps else "max-steps"}
            if metrics:
                event["metrics"] = {k[len("eval_"):] if k.startswith("eval_") else k: float(v)
                                    for k, v in metrics.items() if isinstance(v, (int, float)) and k != "epoch"}
            self.write(state, event)

    return StudioMetrics()


def main():
    cfg = json.loads((HERE / "handoff.json").read_text(encoding="utf-8"))
    args = parse_args(cfg)

    import peft
    import torch
    from datasets import load_dataset
    from transformers import AutoTokenizer, TrainerCallback, set_seed

    # Every process draws the same initial adapter (and TLoRA's frozen A and C) before DDP syncs them anyway.
    set_seed(cfg["trainingArgs"]["seed"])

    # bf16 where the GPU has it (Ampere and newer); float32 elsewhere, as the studio trains.
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    training_args = dict(cfg["trainingArgs"], output_dir=args.output_dir, bf16=bf16, report_to="none")
    if not torch.cuda.is_available():
        # Without it, processes started by accelerate launch / torchrun on a CPU-only host each train alone; with
        # it, accelerate joins them in one gloo process group (MULTI_CPU).
        training_args["use_cpu"] = True
    if args.max_steps:
        training_args["max_steps"] = args.max_steps
    eval_at_end = cfg["evalAtEnd"] and cfg["data"].get("validation")

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    files = {split: str(HERE / path) for split, path in cfg["data"].items()}
    data = load_dataset("json", data_files=files)
    validation = data["validation"] if "validation" in data else None
    if cfg["peft"]["module"] == "studio_methods":
        # TLoRA / LoRA-XS: PEFT custom methods shipped beside this script (importing registers them).
        import studio_methods as config_module
    else:
        config_module = peft
    peft_config = getattr(config_module, cfg["peft"]["className"])(**cfg["peft"]["kwargs"])
    dtype = torch.bfloat16 if bf16 else torch.float32
    info = {"trainExamples": len(data["train"]), "validationExamples": len(validation) if validation else 0,
            "backend": ("cuda" if torch.cuda.is_available() else "cpu") + "/" + cfg["strategy"]}

    if cfg["task"] == "causal-lm":
        from transformers import AutoModelForCausalLM
        from trl import SFTConfig, SFTTrainer

        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
        model = peft.get_peft_model(model, peft_config)
        info["trainableParams"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        callback = make_callback(TrainerCallback, cfg, args.output_dir, info)
        trainer = SFTTrainer(model=model, args=SFTConfig(**training_args, **cfg["sftArgs"]),
                             train_dataset=data["train"], eval_dataset=validation, processing_class=tokenizer,
                             callbacks=[callback])
    else:
        from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                                  TrainingArguments)

        labels = cfg["labels"]
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, dtype=dtype, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)}, ignore_mismatched_sizes=True)
        model.config.pad_token_id = tokenizer.pad_token_id
        model = peft.get_peft_model(model, peft_config)
        info["trainableParams"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        max_length = cfg["maxLength"]

        def tokenize(batch):
            pair = batch["text_pair"] if "text_pair" in batch else None
            return tokenizer(batch["text"], pair, truncation=True, max_length=max_length)

        data = data.map(tokenize, batched=True,
                        remove_columns=[c for c in data["train"].column_names if c != "label"])
        validation = data["validation"] if "validation" in data else None
        callback = make_callback(TrainerCallback, cfg, args.output_dir, info)
        trainer = Trainer(model=model, args=TrainingArguments(**training_args), train_dataset=data["train"],
                          eval_dataset=validation, processing_class=tokenizer,
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=[callback])

    trainer.train(resume_from_checkpoint=True if args.resume else None)
    # The end of training is always evaluated, once (the last step may have been already).
    eval_step, metrics = callback.last_eval
    if eval_at_end and eval_step != trainer.state.global_step:
        metrics = trainer.evaluate()
    if trainer.is_fsdp_enabled:
        # Checkpoints stay sharded (resumable under FSDP); the final adapter is one file PEFT loads anywhere.
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(args.output_dir)
    trainer.save_state()
    callback.finished(trainer.state, metrics)


if __name__ == "__main__":
    main()
`;

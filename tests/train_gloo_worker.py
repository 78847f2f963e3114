"""Run by tests/test_train_distributed.py under torchrun (2 processes, gloo on the CPU).

Each rank takes its half of a fixed set of documents, runs the LCL model under DDP and the global-reduction
loss, and saves its logged losses and every parameter's gradient; the test compares them with one process
on the concatenated batch. Scenarios: ranks with different image counts, and a rank with no pair at all.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_train_distributed import SCENARIOS, build_batch, build_model, setup  # noqa: E402

from omnicorpus.train.loss import lcl_loss  # noqa: E402


def main(output: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tokenizer, config = setup()
    for name, split in SCENARIOS.items():
        model = build_model(config)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        batch = build_batch(tokenizer, config, split[rank])
        result = lcl_loss(ddp(batch), batch.gen_tgt, config.loss)
        result.loss.backward()
        torch.save({
            "generation": float(result.generation), "contrastive": float(result.contrastive),
            "acc": (result.acc_i2t, result.acc_t2i), "pairs": result.pairs, "local_pairs": batch.num_pairs,
            "local_images": batch.num_images,
            "grads": {n: p.grad.clone() for n, p in model.named_parameters()},
        }, Path(output) / f"{name}-rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

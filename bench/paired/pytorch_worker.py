"""One side of bench/paired-epochs.mjs: the PyTorch reference's training loop (bench/reference/nad_reference.py's
train(), the loop the whole-run bench times) on the model's state dict and the same 5 % of a CIFAR-10 folder,
one epoch per command read from stdin ("ft" or "nad"), answering with a JSON line of the epoch's seconds.

  /usr/bin/python3 bench/paired/pytorch_worker.py <state_dict.pt> <train folder> <threads>
"""
import copy, json, os, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
import nad_reference as ref  # noqa: E402


class Args:
    lr, lr_drop_epoch, batch, p = 0.01, 10 ** 9, 64, 2.0  # lr 0.01 throughout, as the nad-onnx side


def main():
    state, train_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = ref.WRN(16, 1, 10, 3)
    model.load_state_dict(torch.load(state))
    x, y = ref.load(train_dir, 3, 0.05, 0)
    teacher = copy.deepcopy(model)
    students = {'ft': copy.deepcopy(model), 'nad': model}
    n_taps = len(model(x[:2], with_taps=True)[1])
    betas = [500.0] + [1000.0] * (n_taps - 1)
    print(json.dumps({'ready': True, 'images': len(y), 'torch': torch.__version__, 'threads': threads}), flush=True)
    for line in sys.stdin:
        kind = line.strip()
        if kind == 'quit':
            break
        t0 = time.time()
        if kind == 'ft':
            ref.train(students['ft'], x, y, 1, Args, gen)
        elif kind == 'nad':
            ref.train(students['nad'], x, y, 1, Args, gen, teacher=teacher, betas=betas)
        else:
            raise SystemExit(f'unknown command {kind}')
        print(json.dumps({'kind': kind, 'seconds': time.time() - t0, 'images': len(y)}), flush=True)


if __name__ == '__main__':
    main()

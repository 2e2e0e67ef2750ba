"""Encode an image to tokens and back, from Python or the command line.

    python -m qkvae.inference IMAGE [WEIGHTS] OUT [--tokens FILE] [--mode resize]
    python -m qkvae.inference --decode TOKENS [WEIGHTS] OUT
    python -m qkvae.inference --decode DIR/shard-00003.parquet:17 [WEIGHTS] OUT   # a shard's row 17

Prints one line in the card's format:
``image=cat.png size=96 tokens=2304 codebook=15360 psnr=29.41dB -> out.png``.
Bad inputs exit with status 2 and a one-line error, never a traceback.
"""

import argparse
import sys
from pathlib import Path

import torch

from qkvae.cli import common_options, run_cli
from qkvae.image import RESIZE_MODES, load_image, save_png
from qkvae.pipeline import reconstruct, reconstruction_psnr
from qkvae.tokens import TOKEN_SUFFIXES, load_tokens, save_tokens
from qkvae.weights import load_qkvae


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m qkvae.inference", description=__doc__.split("\n")[0],
                                parents=[common_options(data=False, split=False, batch_size=None, weights=False)])
    p.add_argument("paths", nargs="+", metavar="IMAGE [WEIGHTS] OUT",
                   help="input image (omitted with --decode), optional weights, output PNG")
    p.add_argument("--tokens", metavar="FILE", help="also write the ids (.npy or .json)")
    p.add_argument("--decode", metavar="FILE", help="decode ids from a .npy or .json file, or SHARD.parquet:ROW")
    p.add_argument("--mode", choices=RESIZE_MODES, default="resize", help="how to fit the image to the model's square")
    args = p.parse_args(argv)
    needed = (1, 2) if args.decode else (2, 3)
    if len(args.paths) not in needed:
        p.error("expected " + ("[WEIGHTS] OUT with --decode" if args.decode else "IMAGE [WEIGHTS] OUT"))
    if args.tokens and Path(args.tokens).suffix not in TOKEN_SUFFIXES:
        p.error(f"--tokens must end in {' or '.join(TOKEN_SUFFIXES)}")
    if args.decode:
        args.paths.insert(0, None)
    args.image, args.out = args.paths[0], args.paths[-1]
    args.weights = args.paths[1] if len(args.paths) == 3 else None
    return args


def run(args: argparse.Namespace) -> str:
    model = load_qkvae(args.weights, device=args.device)
    c = model.config
    if args.decode:
        indices = torch.from_numpy(load_tokens(args.decode, c))
        save_png(model.decode(indices.unsqueeze(0))[0], args.out)
        return f"tokens={args.decode} size={c.image_size} tokens={c.num_tokens} codebook={c.codebook_size} -> {args.out}"
    x = load_image(args.image, size=c.image_size, mode=args.mode)
    indices, x_hat = reconstruct(model, x)
    save_png(x_hat, args.out)
    if args.tokens:
        save_tokens(indices.numpy(), args.tokens, c)
    return (f"image={args.image} size={c.image_size} tokens={c.num_tokens} codebook={c.codebook_size} "
            f"psnr={reconstruction_psnr(x, x_hat):.2f}dB -> {args.out}")


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: print(run(args)))


if __name__ == "__main__":
    sys.exit(main())

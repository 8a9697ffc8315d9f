"""train.py's pieces for autoencoders (`task: reconstruct`) and the VAE's `gaussian_latent`: the
summed reconstruction loss, the metric lines, the KL term of the training step, the targets
made from the normalised inputs, the train_recon/train_kl columns and the posterior-collapse
warning. Plain tuples of strings, placed by train_ctx into its existing line lists (the model's
GaussianLatent and kl_divergence() are in templates/model.py.j2)."""

from __future__ import annotations

from specc.analysis.ir import Program
from specc.analysis.reconstruct import COLLAPSE_NATS, latent_of, latent_options
from specc.codegen.literals import py

LOSSES = {
    "mse": (
        "Squared error summed over the OUTPUT_UNITS outputs and averaged over the rows:\n"
        "    mean_rows sum_j (x^_j - x_j)^2 against the normalised input x (not the mean per "
        "element).",
        ("return (logits - y).square().sum(dim=1).mean()",),
    ),
    "binary_cross_entropy": (
        "Binary cross-entropy softplus(z) - x z of each output's logit z against the minmax-\n"
        "    normalised input x in [0, 1], summed over the OUTPUT_UNITS outputs and averaged\n"
        "    over the rows.",
        ("return (F.softplus(logits) - y * logits).sum(dim=1).mean()",),
    ),
}
"""loss_fn()'s docstring and body of each reconstruction loss."""

TARGETS = (
    "# task: reconstruct: the target of every row is its own normalised input, flattened",
    "y_train, y_val, y_test = (model.normalize(x).flatten(1) for x in (x_train, x_val, x_test))",
)
REFIT_TARGETS = (
    "y_fit, y_train, y_val, y_test = (  # the targets on the refitted normaliser's scale",
    "    model.normalize(x).flatten(1) for x in (x_fit, x_train, x_val, x_test)",
    ")",
)
ENCODE = ("mu, log_var = harness.outputs(model.encode, x)",)


def is_reconstruct(program: Program) -> bool:
    """The program is an autoencoder."""
    return program.task == "reconstruct"


def loss_code(program: Program) -> tuple[str, tuple[str, ...]] | None:
    """loss_fn()'s docstring and body for an autoencoder; None for the other tasks."""
    if not is_reconstruct(program):
        return None
    return LOSSES[program.loss.name]


def constants(program: Program) -> tuple[tuple[str, str, str], ...]:
    """(name, literal, spec key) of KL_WEIGHT and KL_COLLAPSE with a gaussian_latent."""
    latent = latent_of(program.model.layers)
    opts = latent_options(program)
    if latent is None or opts is None:
        return ()
    return (
        ("KL_WEIGHT", py(float(opts.kl_weight)), f"{latent.source}.gaussian_latent.kl_weight"),
        ("KL_COLLAPSE", py(COLLAPSE_NATS), "val KL (nats per row) below which the posterior"
         " collapsed"),
    )  # fmt: skip


def metric_lines(program: Program) -> tuple[str, ...]:
    """evaluate()'s lines after the reconstruction loss: the VAE's parts, and mse."""
    lines: list[str] = []
    if latent_of(program.model.layers) is not None:
        lines += [
            "# the VAE's loss: the reconstruction term above plus KL_WEIGHT times the KL of "
            "q(z|x) (z = mu)",
            *ENCODE,
            'values["recon"] = values["loss"]',
            'values["kl"] = kl_divergence(mu, log_var)',
            'values["loss"] = values["recon"] + KL_WEIGHT * values["kl"]',
        ]
    recon = "torch.sigmoid(logits)" if program.model.output_activation == "sigmoid" else "logits"
    lines.append(f'values["mse"] = ({recon} - y).square().mean()  # per element, normalised units')
    return tuple(lines)


def step_lines(program: Program) -> tuple[str, ...] | None:
    """The training step's loss lines with a gaussian_latent (the sampled pass's KL is added);
    None to keep the ordinary loss line."""
    latent = latent_of(program.model.layers)
    if latent is None:
        return None
    return (
        "recon = loss_fn(model(xb), yb)  # z sampled: mu + sigma * eps",
        f"kl = model.{latent.ident}.kl  # the batch's KL(q(z|x) || N(0, I))",
        "loss = recon + KL_WEIGHT * kl, torch.stack([recon, kl])  # and the terms, for metrics.csv",
    )


def after_model(program: Program) -> tuple[str, ...]:
    """After the model is on the device: the targets are the normalised inputs."""
    return TARGETS if is_reconstruct(program) else ()


def refit_targets(program: Program) -> tuple[str, ...]:
    """refit: best_epochs refits the normaliser, so the targets are made again."""
    return REFIT_TARGETS if is_reconstruct(program) else ()


def has_terms(program: Program) -> bool:
    """The training step also returns the VAE's two loss terms (recon, kl)."""
    return latent_of(program.model.layers) is not None


def after_row(program: Program) -> tuple[str, ...]:
    """The VAE's train_recon and train_kl columns: the row-weighted means of the epoch's
    training minibatches' terms, as train_loss is theirs (no extra pass over the split)."""
    if not has_terms(program):
        return ()
    return ('row.update({"train_recon": float(terms[0]), "train_kl": float(terms[1])})',)


def after_summary(program: Program) -> tuple[str, ...]:
    """The posterior-collapse warning: in summary.json's "warnings" and on stderr."""
    if latent_of(program.model.layers) is None:
        return ()
    return (
        'kl = summary["metrics"]["val" if len(y_val) else "train"]["kl"]',
        "if kl < KL_COLLAPSE:  # q(z|x) equals the prior: the decoder ignores z",
        '    text = f"posterior collapse: the KL is {kl:.3g} nats (below {KL_COLLAPSE})"',
        '    summary["warnings"] = [text]',
        "    harness.announce(f\"warning: {text}; lower the KL weight or the decoder's "
        'capacity", False)',
    )


def model_import(program: Program) -> str:
    """train.py's import from model.py (kl_divergence with a gaussian_latent)."""
    names = "INPUT_SHAPE, OUTPUT_ACTIVATION, OUTPUT_UNITS, build_model"
    if latent_of(program.model.layers) is not None:
        names += ", kl_divergence"
    return f"from model import {names}"

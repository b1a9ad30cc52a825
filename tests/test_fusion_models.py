"""Fusion and mixture models: shapes, the no-news vector, decoupled training's target and gradients."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from kgfin.fusion.config import MODEL_NAMES  # noqa: E402
from kgfin.fusion.models import Mixture, NewsAlone, build_model  # noqa: E402
from kgfin.fusion.train import _mixture_losses, decoupled_target  # noqa: E402

B, F, N = 6, 7, 12


def _inputs(d_r: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x_f, x_n = torch.randn(B, F, generator=g), torch.randn(B, N, generator=g)
    has_news = torch.tensor([True, False, True, True, False, True])
    x_r = torch.randn(B, d_r, generator=g) if d_r else None
    return x_f, x_n, has_news, x_r


def _mixture(seed: int = 0, d_r: int = 2) -> Mixture:
    torch.manual_seed(seed)
    model = build_model("mixture_decoupled", F, N, d_r, hidden=8, proj=8, dropout=0.0)
    assert isinstance(model, Mixture)
    return model


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("d_r", [0, 2])
def test_every_model_maps_a_batch_to_one_prediction_per_row(name: str, d_r: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, F, N, d_r, hidden=8, proj=8, dropout=0.3)
    out = model(*_inputs(d_r))
    if name.startswith("mixture"):
        assert out.pred.shape == (B,) and out.components.shape == (B, 3) and out.weights.shape == (B, 3)
        torch.testing.assert_close(out.weights.sum(-1), torch.ones(B))
        torch.testing.assert_close(out.pred, (out.weights * out.components).sum(-1))
    else:
        assert out.shape == (B,)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", [m for m in MODEL_NAMES if m != "factors_alone"])
def test_ripple_input_moves_the_prediction_only_when_switched_on(name: str) -> None:
    torch.manual_seed(0)
    with_r = build_model(name, F, N, 2, hidden=8, proj=8, dropout=0.0).eval()
    x_f, x_n, has_news, x_r = _inputs(2)
    pred = lambda m, r: (lambda o: o.pred if hasattr(o, "pred") else o)(m(x_f, x_n, has_news, r))  # noqa: E731
    assert not torch.allclose(pred(with_r, x_r), pred(with_r, x_r + 1.0))
    torch.manual_seed(0)
    without = build_model(name, F, N, 0, hidden=8, proj=8, dropout=0.0).eval()
    torch.testing.assert_close(pred(without, None), pred(without, x_r + 1.0))


def test_rows_without_news_use_the_learned_no_news_vector() -> None:
    torch.manual_seed(0)
    model = NewsAlone(N, 0, dropout=0.0).eval()
    with torch.no_grad():
        model.news.no_news.fill_(0.5)
    x_f, x_n, has_news, _ = _inputs(0)
    out = model(x_f, x_n, has_news)
    out2 = model(x_f, x_n * 10, has_news)  # news vectors of rows without news are ignored
    torch.testing.assert_close(out[~has_news], out2[~has_news])
    assert not torch.allclose(out[has_news], out2[has_news])
    expected = model.out(torch.full((1, N), 0.5)).squeeze()
    torch.testing.assert_close(out[1], expected)


def test_decoupled_target_is_softmax_of_negative_scaled_squared_errors() -> None:
    y = torch.tensor([0.0, 1.0])
    comps = torch.tensor([[0.1, -1.0, 0.5], [1.0, 0.0, 3.0]])
    tau = 0.5
    log_q = decoupled_target(y, comps, tau)
    manual = torch.exp(-((y[:, None] - comps) ** 2) / tau)
    torch.testing.assert_close(log_q.exp(), manual / manual.sum(-1, keepdim=True))
    assert log_q.exp()[0].argmax() == 0 and log_q.exp()[1].argmax() == 0  # smallest error, largest weight
    flat = decoupled_target(y, comps, 1e6).exp()  # hot temperature: uniform
    torch.testing.assert_close(flat, torch.full_like(flat, 1 / 3), atol=1e-5, rtol=0)
    sharp = decoupled_target(y, comps, 1e-4).exp()  # cold: all weight on the best component
    torch.testing.assert_close(sharp[:, 0], torch.ones(2), atol=1e-5, rtol=0)


def test_decoupled_target_carries_no_gradient() -> None:
    comps = torch.randn(4, 3, requires_grad=True)
    assert not decoupled_target(torch.randn(4), comps, 1.0).requires_grad


def test_kl_term_gradient_reaches_only_the_gate() -> None:
    model = _mixture()
    x_f, x_n, has_news, x_r = _inputs(2)
    _, _, kl = _mixture_losses(model(x_f, x_n, has_news, x_r), torch.randn(B), tau=1.0)
    kl.backward()
    for name, p in model.components.named_parameters():
        assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
    gate_grads = [p.grad for p in model.gate.parameters()]
    assert all(g is not None for g in gate_grads) and any(torch.count_nonzero(g) for g in gate_grads)


def _component_grads(model: Mixture, loss_kind: str, y: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    conv, comp, kl = _mixture_losses(model(*_inputs(2)), y, tau=1.0)
    (conv if loss_kind == "conventional" else comp + kl).backward()
    return {n: p.grad.clone() for n, p in model.components.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("loss_kind", ["decoupled", "conventional"])
def test_component_losses_are_independent_only_under_decoupled_training(loss_kind: str) -> None:
    y = torch.randn(B, generator=torch.Generator().manual_seed(3))
    model = _mixture()
    before = _component_grads(model, loss_kind, y)
    with torch.no_grad():  # change the news component and the gate, not the factor component
        for p in model.components["news"].parameters():
            p.add_(0.5)
        for p in model.gate.parameters():
            p.mul_(-2.0)
    after = _component_grads(model, loss_kind, y)
    factor_keys = [k for k in before if k.startswith("factors.")]
    same = all(torch.allclose(before[k], after[k]) for k in factor_keys)
    assert same is (loss_kind == "decoupled")


def test_decoupled_component_gradient_equals_its_own_mse_gradient() -> None:
    y = torch.randn(B, generator=torch.Generator().manual_seed(4))
    model = _mixture()
    grads = _component_grads(model, "decoupled", y)
    model.zero_grad(set_to_none=True)
    x_f, x_n, has_news, x_r = _inputs(2)
    own = torch.mean((y - model.components["fusion"](x_f, x_n, has_news, x_r)) ** 2)
    own.backward()
    for n, p in model.components["fusion"].named_parameters():
        torch.testing.assert_close(grads[f"fusion.{n}"], p.grad)

"""LARS against its per-parameter formula (official main.py), state round-trip, and the official groups."""

import copy

import torch
from torch import nn

from pretrain.optim import LARS, param_groups_weights_biases


def reference_lars_step(params, grads, momenta, lr, weight_decay, momentum, eta, wd_filter, lars_filter):
    """One official LARS step on plain tensors, parameter by parameter (momenta updated in place)."""
    for index, (param, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        update = grad.clone()
        if not (wd_filter and param.ndim == 1):
            update = update + weight_decay * param
        if not (lars_filter and param.ndim == 1):
            param_norm, update_norm = param.norm(), update.norm()
            if param_norm > 0 and update_norm > 0:
                update = update * (eta * param_norm / update_norm)
        momenta[index] = momentum * momenta[index] + update
        param -= lr * momenta[index]


def make_params():
    torch.manual_seed(0)
    return [torch.randn(4, 3), torch.randn(5), torch.zeros(3, 2), torch.randn(2, 2, 3), torch.randn(6),
            torch.randn(3)]


def make_grads(step):
    torch.manual_seed(100 + step)
    grads = [torch.randn(4, 3), torch.randn(5), torch.randn(3, 2), torch.zeros(2, 2, 3), torch.randn(6), None]
    return grads


def test_lars_matches_per_parameter_formula_over_steps():
    hyper = dict(lr=0.3, weight_decay=0.0, momentum=0.9, eta=0.001)
    settings = [(False, False), (True, True), (True, False), (False, True)]
    for wd in (0.0, 1e-2):
        hyper["weight_decay"] = wd
        for wd_filter, lars_filter in settings:
            params = [p.requires_grad_() for p in make_params()]
            reference = [p.detach().clone() for p in params]
            momenta = [torch.zeros_like(p) for p in reference]
            optimizer = LARS([{"params": params[:3]}, {"params": params[3:], "lr": 0.1}], **hyper,
                             weight_decay_filter=wd_filter, lars_adaptation_filter=lars_filter)
            for step in range(4):
                grads = make_grads(step)
                for param, grad in zip(params, grads):
                    param.grad = None if grad is None else grad.clone()
                optimizer.step()
                reference_lars_step(reference[:3], grads[:3], momenta, **hyper, wd_filter=wd_filter,
                                    lars_filter=lars_filter)
                rest = momenta[3:]
                reference_lars_step(reference[3:], grads[3:], rest, **{**hyper, "lr": 0.1}, wd_filter=wd_filter,
                                    lars_filter=lars_filter)
                momenta[3:] = rest
                for actual, expected in zip(params, reference):
                    torch.testing.assert_close(actual.detach(), expected, rtol=1e-6, atol=1e-7)
                for index in range(5):
                    torch.testing.assert_close(optimizer.state[params[index]]["mu"], momenta[index])
            assert params[5] not in optimizer.state  # never had a gradient: skipped like officially


def test_lars_does_not_modify_gradients():
    param = torch.randn(3, 3, requires_grad=True)
    param.grad = torch.ones(3, 3)
    LARS([param], lr=0.1, weight_decay=0.5).step()
    assert torch.equal(param.grad, torch.ones(3, 3))


def test_lars_state_dict_round_trip():
    def build():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
        return model, LARS(param_groups_weights_biases(model), lr=0.2, weight_decay=1e-6,
                           weight_decay_filter=True, lars_adaptation_filter=True)

    def train(model, optimizer, steps, seed):
        torch.manual_seed(seed)
        for _ in range(steps):
            optimizer.zero_grad()
            model(torch.randn(8, 4)).square().sum().backward()
            optimizer.step()

    model, optimizer = build()
    train(model, optimizer, 2, seed=1)
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    assert all("mu" in state for state in saved_optimizer["state"].values())
    train(model, optimizer, 3, seed=2)

    resumed_model, resumed_optimizer = build()
    resumed_model.load_state_dict(saved_model)
    resumed_optimizer.load_state_dict(saved_optimizer)
    train(resumed_model, resumed_optimizer, 3, seed=2)
    for actual, expected in zip(resumed_model.parameters(), model.parameters()):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert [group["name"] for group in resumed_optimizer.param_groups] == ["weights", "biases and norm"]


def test_param_groups_weights_biases_follow_official_split():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = param_groups_weights_biases(model)
    assert [group["name"] for group in groups] == ["weights", "biases and norm"]
    conv, norm, _, linear = model
    assert groups[0]["params"] == [conv.weight, linear.weight]
    assert groups[1]["params"] == [conv.bias, norm.weight, norm.bias, linear.bias]

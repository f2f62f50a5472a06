"""FGSM and PGD against their definitions: the analytic FGSM step of a linear classifier, PGD's
constraints and its ascent on a trained model; bad settings refused."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gfnet_seg.robustness.attacks import AttackSettings, check_eval_mode, fgsm, pgd
from gfnet_seg.robustness.classification import Normalized, build_classifier, eval_geometry


def test_fgsm_on_a_linear_classifier_is_eps_times_the_analytic_gradient_sign():
    """Softmax regression z = W x + b: d CE / d x = W^T (softmax(z) - onehot(y)), by hand."""
    torch.manual_seed(0)
    classes, shape = 5, (2, 3, 8, 8)
    linear = nn.Linear(3 * 8 * 8, classes).double()
    images = torch.rand(shape, dtype=torch.float64) * 0.8 + 0.1  # eps 4/255 stays inside [0, 1]
    labels = torch.tensor([1, 3])

    def loss_fn(x):
        return F.cross_entropy(linear(x.flatten(1)), labels, reduction='sum')

    with torch.no_grad():
        probabilities = torch.softmax(linear(images.flatten(1)), dim=1)
        gradient = (probabilities - F.one_hot(labels, classes).double()) @ linear.weight
    expected = images + 4 / 255 * gradient.view(shape).sign()
    torch.testing.assert_close(fgsm(loss_fn, images, eps=4), expected, rtol=0, atol=1e-12)
    assert linear.weight.grad is None  # the parameters' gradients are left alone


def test_fgsm_clips_to_the_image_range():
    images = torch.tensor([[[[0.0, 1.0]]]])
    adversarial = fgsm(lambda x: (x * torch.tensor([-1., 1.])).sum(), images, eps=8)
    assert adversarial.tolist() == [[[[0.0, 1.0]]]]


@pytest.fixture(scope='module')
def trained_model(trained_classifier):
    model = build_classifier('gfnet-h-ti', 4, trained_classifier.input_size, trained_classifier.checkpoint,
                             trained_classifier.embed_dims, (1, 1, 1, 1))
    _, mean, std = eval_geometry(trained_classifier.input_size, 0.875)
    return Normalized(model, mean, std).eval()


def test_pgd_stays_in_the_ball_and_in_range(trained_model):
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    images[:, :, :4] = 0.  # pixels at the borders of [0, 1], where the ball leaves the range
    images[:, :, -4:] = 1.
    labels = torch.tensor([0, 1, 2, 3])
    settings = AttackSettings(eps=6, steps=4, step_size=4)  # steps larger than eps: projection needed
    adversarial = pgd(lambda x: F.cross_entropy(trained_model(x), labels, reduction='sum'), images, settings,
                      torch.Generator().manual_seed(0))
    assert (adversarial - images).abs().max() <= 6 / 255 + 1e-7
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert (adversarial - images).abs().max() > 5.9 / 255  # it moved to the ball's edge somewhere


def test_pgd_ascends_the_loss_on_a_trained_model(trained_model, trained_classifier):
    """Without a random start, PGD's first step is FGSM's step, and each further step does
    not lower the loss on a trained model (whose loss starts low)."""
    from gfnet_seg.classification.data import image_folder
    geometry, _, _ = eval_geometry(trained_classifier.input_size, 0.875)
    from torchvision import transforms
    folder = image_folder(f'{trained_classifier.data}/val', transforms.Compose([geometry, transforms.ToTensor()]))
    images = torch.stack([folder[i][0] for i in range(0, len(folder), 4)])
    labels = torch.tensor([folder[i][1] for i in range(0, len(folder), 4)])
    losses = []

    def loss_fn(x):
        loss = F.cross_entropy(trained_model(x), labels, reduction='sum')
        losses.append(loss.item())
        return loss

    settings = AttackSettings(eps=8, steps=6, step_size=2, random_start=False)
    adversarial = pgd(loss_fn, images, settings)
    with torch.no_grad():
        losses.append(F.cross_entropy(trained_model(adversarial), labels, reduction='sum').item())
    assert len(losses) == settings.steps + 1
    assert all(later >= earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] > 2 * losses[0], losses  # and it does rise
    one_step = AttackSettings(eps=2, steps=1, step_size=2, random_start=False)
    torch.testing.assert_close(pgd(loss_fn, images, one_step), fgsm(loss_fn, images, eps=2))


def test_bad_settings_are_refused(trained_model):
    with pytest.raises(ValueError, match='epsilon must be in 0..255'):
        AttackSettings(eps=256)
    with pytest.raises(ValueError, match='epsilon must be in 0..255'):
        AttackSettings(eps=-1)
    with pytest.raises(ValueError, match='at least one step'):
        AttackSettings(steps=0)
    trained_model.train()
    try:
        with pytest.raises(ValueError, match='Normalized is in train mode: call model.eval'):
            check_eval_mode(trained_model)
    finally:
        trained_model.eval()

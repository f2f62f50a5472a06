"""``tools/analysis/robustness.py cls`` end to end on the generated folder and the tiny trained
GFNet-H, checked against independent computations; bad input in one line."""
import csv
import importlib.util
import json
import os
import shutil

import pytest
import torch
from torchvision import transforms

from gfnet_seg.classification.data import image_folder
from gfnet_seg.robustness.attacks import AttackSettings
from gfnet_seg.robustness.classification import (ALEXNET_ERRORS, ClsRobustnessConfig, Normalized, build_classifier,
                                                 eval_geometry, evaluate_robustness, read_baseline_errors)

pytest.importorskip('skimage')


def load_tool():
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'analysis', 'robustness.py')
    spec = importlib.util.spec_from_file_location('robustness_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_classes(src_val, dst, mapping):
    """``dst/<new name>/`` with the val images of each class in ``mapping`` (class -> new name)."""
    for cls, name in mapping.items():
        shutil.copytree(os.path.join(src_val, cls), os.path.join(dst, name))
    return str(dst)


def tiny_flags(trained):
    return ['--arch', 'gfnet-h-ti', '--checkpoint', trained.checkpoint, '--data-path', trained.data,
            '--input-size', str(trained.input_size), '--embed-dims', *map(str, trained.embed_dims),
            '--depths', '1', '1', '1', '1', '--num-workers', '0', '--batch-size', '16']


@pytest.fixture(scope='module')
def tool_run(trained_classifier, tmp_path_factory):
    root = tmp_path_factory.mktemp('cls_robustness')
    val = os.path.join(trained_classifier.data, 'val')
    classes = sorted(os.listdir(val))
    subset = copy_classes(val, root / 'a_style', {classes[1]: classes[1], classes[3]: classes[3]})
    by_index = copy_classes(val, root / 'v2_style', {cls: str(i) for i, cls in enumerate(classes)})
    out = root / 'out'
    load_tool().main(['cls', *tiny_flags(trained_classifier), '--corruptions', 'gaussian_noise', 'contrast',
                      '--severities', '1', '5', '--steps', '2', '--eps', '4', '--step-size', '2',
                      '--baseline-errors', 'alexnet', '--extra', f'a={subset}', f'v2={by_index}', '--out', str(out)])
    with open(out / 'cls_robustness.csv') as f:
        rows = list(csv.DictReader(f))
    with open(out / 'summary.json') as f:
        summary = json.load(f)
    return rows, summary, out, subset


def test_every_test_is_reported(tool_run):
    rows, summary, out, _ = tool_run
    assert [(row['test'], row['severity']) for row in rows] == [
        ('clean', ''), ('fgsm', ''), ('pgd', ''), ('gaussian_noise', '1'), ('gaussian_noise', '5'),
        ('contrast', '1'), ('contrast', '5'), ('a', ''), ('v2', '')]
    assert all(int(row['images']) == 33 for row in rows[:7])
    assert int(rows[7]['images']) == 8 + 9  # classes 1 and 3 of the val split
    assert max(summary['fgsm'], summary['pgd']) <= summary['clean']


def test_clean_equals_train_cls_eval(tool_run, trained_classifier):
    """The last epoch's evaluation of train_cls.py scored the same weights on the same split."""
    _, summary, _, _ = tool_run
    assert summary['clean'] == pytest.approx(trained_classifier.stats['test_acc1'], abs=1e-3)


def test_folders_by_index_and_class_subsets(tool_run, trained_classifier):
    rows, summary, _, subset = tool_run
    assert summary['v2'] == summary['clean']  # the val images under folders named by output index
    model = build_classifier('gfnet-h-ti', 4, 32, trained_classifier.checkpoint, trained_classifier.embed_dims,
                             (1, 1, 1, 1))
    geometry, mean, std = eval_geometry(32, 0.875)
    folder = image_folder(subset, transforms.Compose([geometry, transforms.ToTensor()]))
    images = torch.stack([image for image, _ in folder])
    with torch.no_grad():
        logits = Normalized(model, mean, std).eval()(images)
    # by hand: the argmax among the two classes present, 1 and 3, against the true class
    predicted = torch.tensor([1, 3])[logits[:, [1, 3]].argmax(1)]
    true = torch.tensor([1 if label == 0 else 3 for _, label in folder])
    assert summary['a'] == pytest.approx(100. * (predicted == true).float().mean().item(), abs=1e-3)


def test_mce_against_alexnet_by_hand(tool_run):
    rows, summary, out, _ = tool_run
    ce = {}
    for name in ('gaussian_noise', 'contrast'):
        errors = [100. - float(row['acc1']) for row in rows if row['test'] == name]
        ce[name] = 100. * (sum(errors) / len(errors)) / ALEXNET_ERRORS[name]
    assert summary['ce'] == pytest.approx(ce)
    assert summary['mCE'] == pytest.approx(sum(ce.values()) / 2)
    own = read_baseline_errors(str(out / 'corruption_errors.csv'))  # a run's errors serve as a baseline
    assert own == pytest.approx({name: value * ALEXNET_ERRORS[name] / 100. for name, value in ce.items()}, abs=1e-3)


def test_any_timm_model(trained_classifier, tmp_path):
    """A timm model (random weights, saved as a state dict) runs through the same code."""
    import timm
    model = timm.create_model('test_resnet', num_classes=4)
    path = str(tmp_path / 'resnet.pth')
    torch.save(model.state_dict(), path)
    loaded = build_classifier('test_resnet', 4, 32, path)
    config = ClsRobustnessConfig(trained_classifier.data, attacks=('fgsm',), corruptions=('pixelate',), severities=(2,),
                                 input_size=32, batch_size=33, num_workers=0, attack=AttackSettings(eps=2))
    rows = evaluate_robustness(loaded, config, torch.device('cpu'))
    assert [row['test'] for row in rows] == ['clean', 'fgsm', 'pixelate']
    loaded.train()
    with pytest.raises(ValueError, match='train mode'):
        evaluate_robustness(loaded, config, torch.device('cpu'))


@pytest.mark.parametrize('flags, message', [
    (['--eps', '300'], 'error: attack epsilon must be in 0..255 pixel units, got 300.0'),
    (['--corruptions', 'fogg'], "error: unknown corruption 'fogg'; valid: gaussian_noise, "),
    (['--data-path', 'EMPTY'], 'error: no images in '),
])
def test_bad_input_in_one_line(trained_classifier, tmp_path, capsys, flags, message):
    (tmp_path / 'val' / 'n0').mkdir(parents=True)
    flags = [str(tmp_path) if flag == 'EMPTY' else flag for flag in flags]
    with pytest.raises(SystemExit) as exit_info:
        load_tool().main(['cls', *tiny_flags(trained_classifier), *flags, '--out', str(tmp_path / 'out')])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message), err
    assert not any(line.startswith('Traceback') for line in err)

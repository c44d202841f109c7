import pytest

from gankit.config import RunConfig, config_from_dict, dump_yaml, load_config, parse_override
from gankit.errors import ConfigError


def write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_overrides_are_typed_and_applied():
    cfg = load_config(None, ["loss.name=wgan-gp", "train.n_critic=5", "train.steps=2000",
                             "optim.lr_d=1e-4", "train.compile=true", "eval.metrics=fid,kid"])
    assert cfg.loss.name == "wgan-gp"
    assert cfg.train.n_critic == 5 and isinstance(cfg.train.n_critic, int)
    assert cfg.optim.lr_d == pytest.approx(1e-4) and isinstance(cfg.optim.lr_d, float)
    assert cfg.train.compile is True
    assert cfg.eval.metrics == ["fid", "kid"]


def test_int_accepted_for_float_but_not_the_reverse():
    assert load_config(None, ["optim.lr_g=1"]).optim.lr_g == 1.0
    with pytest.raises(ConfigError, match="train.steps must be int"):
        load_config(None, ["train.steps=2.5"])
    with pytest.raises(ConfigError, match="train.compile must be bool"):
        load_config(None, ["train.compile=5"])


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.n_critc' \(did you mean 'train.n_critic'"):
        load_config(None, ["train.n_critc=5"])
    with pytest.raises(ConfigError, match="did you mean 'loss.name'"):
        load_config(None, ["los.name=hinge"])


def test_preset_with_base_and_yaml_errors(tmp_path):
    base = write(tmp_path, "train:\n  steps: 7\nloss:\n  name: hinge\n", "base.yaml")
    child = write(tmp_path, f"base: {base}\ntrain:\n  n_critic: 3\n", "child.yaml")
    cfg = load_config(child, ["train.steps=9"])
    assert (cfg.train.steps, cfg.train.n_critic, cfg.loss.name) == (9, 3, "hinge")
    bad = write(tmp_path, "train: [1, 2\n", "bad.yaml")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="did you mean 'toy_ring8'"):
        load_config("toy_rign8")
    typo = write(tmp_path, "train:\n  stepz: 3\n", "typo.yaml")
    with pytest.raises(ConfigError, match="did you mean 'train.steps'"):
        load_config(typo)


def test_model_section_depends_on_kind():
    cfg = load_config(None, ["model.z_dim=16"])
    assert cfg.model.kind == "gan" and cfg.model.z_dim == 16
    with pytest.raises(ConfigError, match="unknown model kind 'gna'.*did you mean 'gan'"):
        load_config(None, ["model.kind=gna"])


def test_yes_no_options_take_yaml_booleans(tmp_path):
    # YAML reads yes/no (and true/false) as booleans; for an option whose values include
    # "yes" and "no" they mean those words, from an override and from a file alike
    assert load_config("toy_ring8", ["data.resident=no"]).data.resident == "no"
    assert load_config("toy_ring8", ["data.resident=yes"]).data.resident == "yes"
    assert load_config(None, ["data.resident=false"]).data.resident == "no"
    assert load_config(None, ["data.resident='no'"]).data.resident == "no"
    assert load_config(write(tmp_path, "data:\n  resident: no\n")).data.resident == "no"
    assert load_config(write(tmp_path, "data:\n  resident: yes\n", "y.yaml")).data.resident == "yes"
    cfg = load_config(None, ["data.resident=no"])
    assert config_from_dict(cfg.to_dict()).data.resident == "no"
    # a boolean stays an error where yes/no are not among the values
    with pytest.raises(ConfigError, match="data.on_bad must be str, got False"):
        load_config(None, ["data.on_bad=no"])


def test_round_trip_through_dict_and_yaml():
    cfg = load_config(None, ["loss.name=lsgan", "model.z_dim=8", "eval.metrics=fid"])
    again = config_from_dict(cfg.to_dict())
    assert again == cfg
    assert "lsgan" in dump_yaml(cfg)


def test_validation_of_choices_and_ranges():
    with pytest.raises(ConfigError, match="data.batch_size must be at least 1"):
        load_config(None, ["data.batch_size=0"])
    with pytest.raises(ConfigError, match="optim.name must be one of adam, rmsprop"):
        load_config(None, ["optim.name=sgd"])
    with pytest.raises(ConfigError, match=r"optim.decay_start must be in \[0, 1\]"):
        load_config(None, ["optim.decay_start=1.5"])
    assert load_config(None, ["optim.decay_start=0"]).optim.decay_start == 0.0
    with pytest.raises(ConfigError, match="look like section.key=value"):
        parse_override("train.steps")


def test_builtin_presets_all_load():
    from gankit.config import PRESET_DIR

    names = [p.stem for p in PRESET_DIR.glob("*.yaml")]
    assert {"toy_ring8", "toy_grid25", "mnist_dcgan", "anime64"} <= set(names)
    for name in names:
        assert isinstance(load_config(name), RunConfig)


@pytest.mark.parametrize("kind", ["mle", "vae", "glo", "flow"])
def test_loss_keys_are_refused_where_the_kind_has_no_adversarial_loss(kind):
    with pytest.raises(ConfigError, match=f"loss.name=hinge does nothing for model.kind={kind}"):
        load_config(None, [f"model.kind={kind}", "loss.name=hinge"])
    load_config(None, [f"model.kind={kind}"])  # the defaults alone are fine


def test_keys_read_by_the_kind_are_still_accepted():
    assert load_config(None, ["model.kind=gan", "loss.name=hinge"]).loss.name == "hinge"
    assert load_config(None, ["model.kind=seqgan", "D.width=8"]).D.width == 8
    flow = load_config(None, ["model.kind=flow", "model.objective=hybrid", "loss.name=hinge"])
    assert flow.loss.name == "hinge"
    with pytest.raises(ConfigError, match=r"D.width=8 does nothing for model.kind=vae \(it has no discriminator\)"):
        load_config(None, ["model.kind=vae", "D.width=8"])


@pytest.mark.parametrize("override,message", [
    ("model.lambda_l1=50", "unknown config key 'model.lambda_l1' (model.lambda_l1 is an option of "
                           "model.kind=pix2pix; this run's model.kind is gan)"),
    ("lr=0.001", "unknown config key 'lr' (did you mean 'optim.lr_g' or 'optim.lr_d'?)"),
    ("train.n_critc=5", "unknown config key 'train.n_critc' (did you mean 'train.n_critic'?)"),
    ("G.lr_g=0.1", "unknown config key 'G.lr_g' (did you mean 'optim.lr_g'?)"),
    ("trian.steps=3", "unknown config key 'trian.steps' (did you mean 'train.steps'?)"),
])
def test_did_you_mean_suggests_what_was_meant(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value) == message


def test_one_suggestion_helper_for_every_name():
    from gankit.registry import suggestions

    assert suggestions("n_critc", ["n_critic", "n_grid", "steps"]) == ["n_critic"]
    assert suggestions("bogus", ["tags", "layout"]) == []
    assert suggestions("data.bogus", ["data.tags", "data.layout", "model.z_dim"]) == []
    assert suggestions("toy_rign8", ["toy_ring8", "toy_grid25", "toy_ring8_flow"]) == ["toy_ring8"]


def test_changing_the_kind_drops_a_base_presets_unused_sections():
    # mnist_dcgan sets D.name=dcgan and D.width; a VAE has no D, so they go back to the defaults
    cfg = load_config("mnist_dcgan", ["model.kind=vae"])
    assert cfg.D == RunConfig().D
    with pytest.raises(ConfigError, match="D.width=8 does nothing for model.kind=vae"):
        load_config("mnist_dcgan", ["model.kind=vae", "D.width=8"])


def test_a_stored_config_with_the_old_ada_default_still_loads_without_ada():
    """Runs saved while train.ada_kimg defaulted to 100 must resume: without ADA the value is
    inert and is read as the current default; with ADA it is kept as trained."""
    from gankit.config import config_from_dict, validate

    tree = load_config("faces32_dcgan").to_dict()
    tree["train"]["ada_kimg"] = 100.0
    cfg = config_from_dict(tree)
    validate(cfg)  # refused before: "train.ada_target and train.ada_kimg apply to ada-lite"
    assert cfg.train.augment == "diffaugment" and cfg.train.ada_kimg == 500.0
    tree["train"]["augment"] = "ada-lite"
    assert config_from_dict(tree).train.ada_kimg == 100.0

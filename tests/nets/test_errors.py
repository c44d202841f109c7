"""Configurations the nets cannot serve raise ConfigError with a message saying what to do."""
import pytest

from gankit.config import NetConfig
from gankit.data.info import DataInfo
from gankit.errors import ConfigError
from gankit.nets import build_discriminator, build_generator


def image(size, height=None, channels=3):
    return DataInfo("image", (channels, height or size, size))


def build_both(cfg, info):
    """Both builders must raise ConfigError; return their messages."""
    with pytest.raises(ConfigError) as g_err:
        build_generator(cfg, info, z_dim=4)
    with pytest.raises(ConfigError) as d_err:
        build_discriminator(cfg, info)
    return str(g_err.value), str(d_err.value)


@pytest.mark.parametrize("size", [16, 48, 128])
def test_dcgan_rejects_other_sizes_and_names_the_supported_ones(size):
    for message in build_both(NetConfig(name="dcgan"), image(size)):
        assert f"{size}x{size}" in message
        assert "28, 32, 64 px" in message
        assert "data.image_size" in message and "mlp" in message


@pytest.mark.parametrize("size", [28, 16])
def test_resnet_supports_32_and_64_only(size):
    for message in build_both(NetConfig(name="resnet"), image(size)):
        assert "32, 64 px" in message


def test_non_square_images_are_rejected():
    for message in build_both(NetConfig(name="dcgan"), image(32, height=28)):
        assert "28x32" in message


def test_conv_nets_need_images():
    for net in ("dcgan", "resnet"):
        for message in build_both(NetConfig(name=net), DataInfo("vector", (2,))):
            assert "image data" in message and "mlp" in message


def test_sequence_data_has_no_default_net():
    for message in build_both(NetConfig(name="auto"), DataInfo("sequence", (20,))):
        assert "sequence" in message
    for message in build_both(NetConfig(name="mlp"), DataInfo("sequence", (20,))):
        assert "sequence" in message


def test_unknown_net_name_suggests_the_closest():
    for message in build_both(NetConfig(name="dcgna"), image(32)):
        assert "did you mean 'dcgan'" in message


def test_unsupported_norms():
    info = DataInfo("vector", (2,))
    g_msg, d_msg = build_both(NetConfig(name="mlp", norm="instance"), info)
    assert "G.norm='instance'" in g_msg and "D.norm='instance'" in d_msg
    assert "batch, none, layer" in g_msg
    g_msg, d_msg = build_both(NetConfig(name="dcgan", norm="group"), image(32))
    assert "G.norm='group'" in g_msg and "batch, none, layer, instance" in d_msg


def test_mlp_needs_a_hidden_layer():
    g_msg, d_msg = build_both(NetConfig(name="mlp", depth=0), DataInfo("vector", (2,)))
    assert "G.depth must be at least 1" in g_msg and "D.depth must be at least 1" in d_msg


def test_bad_dimensions():
    info = DataInfo("vector", (2,))
    with pytest.raises(ConfigError, match="z_dim"):
        build_generator(NetConfig(name="mlp"), info, z_dim=0)
    with pytest.raises(ConfigError, match="c_dim"):
        build_discriminator(NetConfig(name="mlp"), info, c_dim=-1)
    with pytest.raises(ConfigError, match="concat, projection"):
        build_discriminator(NetConfig(name="mlp"), info, c_dim=2, cond_mode="add")

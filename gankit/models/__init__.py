"""Models register themselves (class and options) under ``model.kind``."""
from gankit.config import MODEL_OPTIONS
from gankit.registry import Registry

MODELS: Registry[type] = Registry("model kind")


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` and its ``Options`` dataclass available by ``cls.kind``."""
    MODELS.add(cls.kind, cls)
    MODEL_OPTIONS.add(cls.kind, cls.Options)
    return cls


from gankit.models import gan  # noqa: E402,F401  (registration side effects)
from gankit.models import vae, flow, glo  # noqa: E402,F401  (families beyond GANs)
from gankit.models import mle, seqgan, gumbel, dense, style  # noqa: E402,F401  (sequence models)
from gankit.models import pix2pix, cyclegan  # noqa: E402,F401  (image-to-image translation)

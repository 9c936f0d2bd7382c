/**
 * studio_methods.py of a hand-off folder: TLoRA and LoRA-XS as PEFT custom methods, which train.py imports when the
 * project uses one; engine/adapters/{tlora,loraxs}/handoff-peft.ts read the adapters it saves.
 */
export const STUDIO_METHODS_PY = `"""TLoRA and LoRA-XS as PEFT custom methods (PEFT has neither), registered with peft's register_peft_method.

Their frozen matrices are persistent buffers, so adapter_model.safetensors holds them: PEFT warns that seeded
regeneration differs across devices and versions, and Adapter Studio reads them from the file. Saved keys
(no adapter name, as PEFT saves): TLoRA  base_model.model.<module>.tlora_A (in x r, frozen), .tlora_B (r x r),
.tlora_C (r x out, frozen), .tlora_alpha (1); LoRA-XS  .loraxs_A (r x in, frozen S*V^T), .loraxs_B (out x r,
frozen U), .loraxs_R (r x r). adapter_config.json has peft_type "TLORA" / "LORAXS".
"""
import math
from dataclasses import dataclass, field
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from peft.config import PeftConfig
from peft.tuners._buffer_dict import BufferDict
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from peft.utils import register_peft_method
from peft.utils.peft_types import PeftType
from transformers.pytorch_utils import Conv1D


def _peft_type(name):
    """register_peft_method only takes names of PeftType, a closed enum, so an out-of-tree method adds its member."""
    if name not in PeftType.__members__:
        member = str.__new__(PeftType, name)
        member._name_ = name
        member._value_ = name
        PeftType._member_map_[name] = member
        PeftType._value2member_map_[name] = member
        PeftType._member_names_.append(name)
        type.__setattr__(PeftType, name, member)
    return PeftType[name]


TLORA = _peft_type("TLORA")
LORAXS = _peft_type("LORAXS")


@dataclass
class _TargetConfig(PeftConfig):
    target_modules: Optional[Union[list[str], str]] = field(default=None)
    exclude_modules: Optional[Union[list[str], str]] = field(default=None)
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None)
    layers_pattern: Optional[Union[list[str], str]] = field(default=None)
    modules_to_save: Optional[list[str]] = field(default=None)
    bias: str = field(default="none")

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)


@dataclass
class TloraConfig(_TargetConfig):
    """TLoRA (Islam 2025): y = W x + Dropout(alpha * x A B C), A and C frozen kaiming-normal (a = sqrt 5)."""

    r: int = field(default=32)
    tlora_dropout: float = field(default=0.5)
    projection_seed: int = field(default=0)

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = TLORA


@dataclass
class LoraxsConfig(_TargetConfig):
    """LoRA-XS (Balazy et al. 2024): y = W x + (alpha / r) B R A drop(x), A and B the frozen truncated SVD of W."""

    r: int = field(default=32)
    alpha: float = field(default=64.0)
    loraxs_dropout: float = field(default=0.0)
    init_std: float = field(default=1e-5)
    seed: int = field(default=0)

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = LORAXS


def _features(base):
    # transformers' Conv1D (GPT-2) stores its weight as (in, out).
    if isinstance(base, Conv1D):
        return base.weight.shape[0], base.weight.shape[1]
    return base.in_features, base.out_features


class _Layer(nn.Module, BaseTunerLayer):
    """A wrapped Linear / Conv1D whose adapters add delta(name, x) to the base output (no merging)."""

    trainable_name = ""

    def __init__(self, base_layer):
        nn.Module.__init__(self)
        self.base_layer = base_layer
        self._disable_adapters = False
        self.merged_adapters = []
        self.in_features, self.out_features = _features(base_layer)
        for name in self.adapter_layer_names:
            setattr(self, name, nn.ParameterDict({}))
        for name in self.other_param_names:
            setattr(self, name, nn.ModuleDict({}) if name.endswith("dropout") else BufferDict({}, persistent=True))

    def _finish(self, adapter_name):
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def forward(self, x, *args, **kwargs):
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        for name in self.active_adapters:
            if name in getattr(self, self.trainable_name):
                result = result + self.delta(name, x).to(result.dtype)
        return result


class TloraLayer(_Layer):
    adapter_layer_names = ("tlora_B", "tlora_alpha")
    other_param_names = ("tlora_A", "tlora_C", "tlora_dropout")
    trainable_name = "tlora_B"

    def update_layer(self, adapter_name, config, seed):
        r = config.r
        g = torch.Generator().manual_seed(seed)
        # kaiming_normal_(a=sqrt 5) as the reference: std = sqrt(1/3) / sqrt(fan_in), fan_in = size(1).
        self.tlora_A[adapter_name] = torch.randn(self.in_features, r, generator=g) / math.sqrt(3 * r)
        self.tlora_C[adapter_name] = torch.randn(r, self.out_features, generator=g) / math.sqrt(3 * self.out_features)
        self.tlora_B[adapter_name] = nn.Parameter(torch.zeros(r, r))
        self.tlora_alpha[adapter_name] = nn.Parameter(torch.ones(1))
        p = config.tlora_dropout
        self.tlora_dropout[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        self._finish(adapter_name)

    def delta(self, name, x):
        A = self.tlora_A[name]
        h = x.to(A.dtype) @ A @ self.tlora_B[name] @ self.tlora_C[name]
        # The reference drops the scaled adapter output, not the input.
        return self.tlora_dropout[name](self.tlora_alpha[name] * h)


class LoraxsLayer(_Layer):
    adapter_layer_names = ("loraxs_R",)
    other_param_names = ("loraxs_A", "loraxs_B", "loraxs_dropout")
    trainable_name = "loraxs_R"

    def update_layer(self, adapter_name, config, seed):
        r = config.r
        if r > min(self.in_features, self.out_features):
            raise ValueError(f"loraxs: r = {r} exceeds min(in, out) = {min(self.in_features, self.out_features)}")
        weight = self.base_layer.weight.detach().float()
        if isinstance(self.base_layer, Conv1D):
            weight = weight.T
        U, S, Vh = torch.linalg.svd(weight, full_matrices=False)
        self.loraxs_A[adapter_name] = (S[:r, None] * Vh[:r]).contiguous()
        self.loraxs_B[adapter_name] = U[:, :r].contiguous()
        g = torch.Generator().manual_seed(seed)
        self.loraxs_R[adapter_name] = nn.Parameter(torch.randn(r, r, generator=g) * config.init_std)
        self.scaling = getattr(self, "scaling", {})
        self.scaling[adapter_name] = config.alpha / r
        p = config.loraxs_dropout
        self.loraxs_dropout[adapter_name] = nn.Dropout(p) if p > 0 else nn.Identity()
        self._finish(adapter_name)

    def delta(self, name, x):
        A = self.loraxs_A[name]
        h = F.linear(F.linear(self.loraxs_dropout[name](x.to(A.dtype)), A), self.loraxs_R[name])
        return F.linear(h, self.loraxs_B[name]) * self.scaling[name]


def _tuner(layer_cls, prefix, seed_field):
    class Model(BaseTuner):
        tuner_layer_cls = layer_cls
        target_module_mapping = {}

        def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key, **kwargs):
            # Modules are visited in named_modules() order, so the index (and each module's seed) is the same on
            # every rank and every run.
            index = self._module_count = getattr(self, "_module_count", -1) + 1
            seed = getattr(config, seed_field) * 1_000_003 + index
            if isinstance(target, layer_cls):
                target.update_layer(adapter_name, config, seed)
                return
            if not isinstance(target, (nn.Linear, Conv1D)):
                raise TypeError(f"{prefix[:-1]}: {current_key} is a {type(target).__name__}; only Linear and Conv1D")
            module = layer_cls(target)
            module.update_layer(adapter_name, config, seed)
            self._replace_module(parent, target_name, module, target)

    Model.prefix = prefix
    Model.__name__ = layer_cls.__name__.replace("Layer", "Model")
    return Model


TloraModel = _tuner(TloraLayer, "tlora_", "projection_seed")
LoraxsModel = _tuner(LoraxsLayer, "loraxs_", "seed")

register_peft_method(name="tlora", config_cls=TloraConfig, model_cls=TloraModel, prefix="tlora_")
register_peft_method(name="loraxs", config_cls=LoraxsConfig, model_cls=LoraxsModel, prefix="loraxs_")
`;

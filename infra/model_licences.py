"""The licence of each model the service can be configured with — facts from each model card, not
legal advice. `make check-provider` names the licence of every configured model from this table;
add a row when a new model is configured (an unknown model is reported as such).

Checked against the Hugging Face model cards in December 2026. The FLUX.1 [dev] Non-Commercial
License (v1.1) lets anyone use the *outputs* for any purpose, commercial included (except training a
competing model, section 2(d)); running the *weights* for a commercial product is not a
non-commercial purpose and needs Black Forest Labs' commercial licence — unless the weights are run
by an inference provider licensed by BFL to serve them commercially (check the provider's terms).
"""
from __future__ import annotations

from dataclasses import dataclass

BFL_DEV_LICENCE = "FLUX.1 [dev] Non-Commercial License"
BFL_DEV_LINK = "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md"
BFL_COMMERCIAL = "https://bfl.ai/licensing"


@dataclass(frozen=True)
class Licence:
    name: str
    link: str
    self_host_commercial: bool  # may we run the weights ourselves (a dedicated endpoint) for a paid product?
    note: str
    # Said as a WARNING wherever the model is configured (however it is served): what its card rules out.
    card_warning: str = ""


_BFL_NOTE = ("outputs may be used commercially; running these weights yourself (a dedicated Inference Endpoint, "
             f"your own GPUs) for a commercial product needs BFL's commercial licence ({BFL_COMMERCIAL}); an "
             "inference provider licensed by BFL may serve them commercially — check its terms")

LICENCES: dict[str, Licence] = {
    "black-forest-labs/FLUX.1-dev": Licence(BFL_DEV_LICENCE, BFL_DEV_LINK, False, _BFL_NOTE),
    "black-forest-labs/FLUX.1-Kontext-dev": Licence(
        BFL_DEV_LICENCE, "https://huggingface.co/black-forest-labs/FLUX.1-Kontext-dev/blob/main/LICENSE.md",
        False, _BFL_NOTE),
    # A LoRA for FLUX.1-dev, published under the base model's licence (its card: flux-1-dev-non-commercial-license).
    "XLabs-AI/flux-RealismLora": Licence(BFL_DEV_LICENCE, BFL_DEV_LINK, False,
                                         "a FLUX.1-dev derivative under the same licence; " + _BFL_NOTE),
    "black-forest-labs/FLUX.1-schnell": Licence(
        "Apache-2.0", "https://huggingface.co/black-forest-labs/FLUX.1-schnell", True,
        "weights and outputs usable commercially"),
    "Falconsai/nsfw_image_detection": Licence(
        "Apache-2.0", "https://huggingface.co/Falconsai/nsfw_image_detection", True,
        "weights and outputs usable commercially"),
    # Attribute suggestions (ATTRIBUTE_MODEL, issue 30). The code and weights are MIT (github.com/openai/CLIP,
    # LICENSE); the model card's "Out-of-Scope Use Cases" says any deployed use, commercial or not, is out of
    # scope without task-specific testing with a fixed class taxonomy, and documents demographic biases.
    "openai/clip-vit-large-patch14": Licence(
        "MIT", "https://github.com/openai/CLIP/blob/main/LICENSE", True,
        "weights usable commercially under MIT",
        card_warning=("its model card (https://huggingface.co/openai/clip-vit-large-patch14) calls any deployed use "
                      "out of scope unless tested in-domain with a fixed class taxonomy; test the fixed label set "
                      "of chalicelib/avatars/suggestions.py on your own photos before turning suggestions on")),
}


def licence_line(repo: str, *, self_hosted: bool = False) -> str:
    """One line naming the model's licence; a WARNING when it is run on our own endpoint and its
    licence does not allow that commercially."""
    found = LICENCES.get(repo)
    if found is None:
        return (f"Licence of {repo}: not in infra/model_licences.py — read its model card and add a row "
                "before production.")
    line = f"Licence of {repo}: {found.name} ({found.link}) — {found.note}."
    if self_hosted and not found.self_host_commercial:
        line = ("WARNING: " + line + " It is configured on a dedicated endpoint (self-hosted): a commercial "
                "service needs BFL's commercial licence for it.")
    if found.card_warning:
        line = ("" if line.startswith("WARNING: ") else "WARNING: ") + line + " Also: " + found.card_warning + "."
    return line

"""Azure OpenAI price tables and the code that turns a call's usage into a cost.

One-way dependency: ``meter`` uses ``pricing``; ``pricing`` never imports ``meter``
(usage is duck-typed through ``UsageLike``).
"""

from meter.pricing.book import PriceBook
from meter.pricing.deployment_map import DeploymentInfo, load_deployment_map
from meter.pricing.deployment_types import DEPLOYMENT_TYPES, canonical_deployment_type
from meter.pricing.errors import PricingFileError, Problem
from meter.pricing.model import KINDS, Cost
from meter.pricing.usage import UsageLike

__all__ = [
    "DEPLOYMENT_TYPES",
    "KINDS",
    "Cost",
    "DeploymentInfo",
    "PriceBook",
    "PricingFileError",
    "Problem",
    "UsageLike",
    "canonical_deployment_type",
    "load_deployment_map",
]

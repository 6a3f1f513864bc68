"""The commerce experience of an organization (SPEC §3): fixed at creation.

Legacy organizations may buy Communications Credits (an order, funds, auto-recharge); NCE
organizations cannot and pay their usage beyond the included minutes as overage, after use.
"""

LEGACY, NCE = "legacy", "nce"
COMMERCE_KINDS = (LEGACY, NCE)

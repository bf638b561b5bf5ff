"""Auto insurance over HTTP, for customers (their secret; mounted at ``/banking``): ask for a
quote and read it, ask for a policy with it (issued by the banking worker), read the caller's
policies, cancel one (the unused premium refunded). Another customer's quote or policy answers
404, as an unknown one does. Every amount is a JSON number of reais with two decimals (integer
centavos inside); a value that breaks a rule is a 422 naming its field. See
docs/banking-insurance.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from msgspec import Meta

from paycore.banking.domain import InvalidCpf
from paycore.banking.insurance.cache import MemoryQuoteCache, QuoteCache, RedisQuoteCache
from paycore.banking.insurance.policy import PolicyCancelled, PolicyNotIssued, QuoteTaken
from paycore.banking.insurance.quote import (
    MAX_TEXT,
    InvalidDeductible,
    InvalidInsuredAmount,
    InvalidPlate,
    InvalidText,
    InvalidVehicleYear,
    NoCoverage,
    Person,
    QuoteRequest,
    UnknownCoverage,
    UnknownPaymentMethod,
    Vehicle,
    coverages_of,
    payment_method_of,
)
from paycore.banking.insurance.service import PREMIUMS, Insurance, rates_of
from paycore.banking.insurance.views import PolicyOut, QuoteOut, policy_view, quote_view
from paycore.banking.ledger.domain import Reason, TransferRefused
from paycore.banking.ledger.service import AccountClosed
from paycore.banking.settings import BankingSettings
from paycore.banking.web import AS_CUSTOMER, CUSTOMER_ERRORS, Customer
from paycore.platform.clock import utcnow
from paycore.platform.errors import NotFound
from paycore.platform.persistence.uow import Database
from paycore.platform.web.bodies import Cents, CentsOrZero, Input, text
from paycore.platform.web.params import UUID_PATTERN, UuidId
from paycore.platform.web.routes import Routes, on_state

if TYPE_CHECKING:
    from redis.asyncio import Redis

routes = Routes("banking insurance")


class InsuranceApi:
    """What the insurance routes need, kept on the app's state (``banking_insurance``) by
    ``processes.mount_api``: the use cases."""

    def __init__(self, insurance: Insurance) -> None:
        self.insurance = insurance

    @classmethod
    def wired(cls, db: Database, redis: Redis | None, bank: dict[str, str]) -> InsuranceApi:
        """As an API process wires it: the rates of the banking settings, quotes cached in
        Redis if the process has it (in memory otherwise), the bank's own accounts (by
        name)."""
        cache: QuoteCache = MemoryQuoteCache() if redis is None else RedisQuoteCache(redis)
        insurance = Insurance(
            db, rates=rates_of(BankingSettings()), cache=cache, premiums_id=bank[PREMIUMS.name]
        )
        return cls(insurance)


Api = Annotated[InsuranceApi, on_state("banking_insurance", InsuranceApi)]

Name = Annotated[str, text(MAX_TEXT)]


class InsuredIn(Input):
    """The insured person: anyone, not necessarily the customer."""

    name: Name
    cpf: Annotated[
        str,
        Meta(
            max_length=20,
            description="11 digits with valid check digits, with or without the dots and dash",
        ),
    ]


class VehicleIn(Input):
    brand: Name
    model: Name
    year: Annotated[int, Meta(description="From 1950 to next year")]
    plate: Annotated[
        str, Meta(max_length=16, description="ABC1234 or ABC-1234 (old), ABC1D23 (Mercosul)")
    ]


class QuoteIn(Input):
    """What a quote prices: who and what is insured, for how much, against what, paid how."""

    insured: InsuredIn
    vehicle: VehicleIn
    insured_amount: Cents
    coverages: Annotated[
        list[Annotated[str, Meta(max_length=32)]],
        Meta(
            max_length=32,
            description="One or more of collision, theft, fire, third_party, glass, roadside",
        ),
    ]
    payment_method: Annotated[
        str, Meta(max_length=32, description="pix, credit_card, debit_card or boleto")
    ]
    deductible: CentsOrZero | None = None  # below the insured amount; none: 0.00


class PolicyIn(Input):
    """A policy to buy with a quote, its premium charged to one of the caller's accounts."""

    quote_id: Annotated[str, Meta(pattern=UUID_PATTERN, description="A quote the caller got")]
    account_id: Annotated[
        str, Meta(pattern=UUID_PATTERN, description="One of the caller's checking accounts")
    ]


QUOTE_ERRORS = (
    *CUSTOMER_ERRORS,
    InvalidText,
    InvalidCpf,
    InvalidVehicleYear,
    InvalidPlate,
    InvalidInsuredAmount,
    InvalidDeductible,
    NoCoverage,
    UnknownCoverage,
    UnknownPaymentMethod,
)
FOUND_ERRORS = (*CUSTOMER_ERRORS, NotFound)


def _request(body: QuoteIn) -> QuoteRequest:
    """The body as the domain's request: each rule it breaks is a ``QuoteError`` (or
    ``InvalidCpf``) naming the field."""
    return QuoteRequest(
        insured=Person(body.insured.name, body.insured.cpf),
        vehicle=Vehicle(
            body.vehicle.brand, body.vehicle.model, body.vehicle.year, body.vehicle.plate
        ),
        insured_amount=int(body.insured_amount),  # plain ints: Cents is the reader's type
        deductible=int(body.deductible or 0),
        coverages=coverages_of(body.coverages),
        payment_method=payment_method_of(body.payment_method),
    )


# --- quotes --------------------------------------------------------------------------------


@routes.post(
    "/insurance/quotes",
    status_code=201,
    errors=QUOTE_ERRORS,
    summary="Price an auto-insurance policy: every component of the premium, the quote's id "
    "and until when a policy may be asked for with it",
    **AS_CUSTOMER,
)
async def create_quote(customer: Customer, body: QuoteIn, api: Api) -> QuoteOut:
    now = utcnow()
    return quote_view(await api.insurance.quote(customer.id, _request(body), now), now)


@routes.get(
    "/insurance/quotes/{quote_id}",
    errors=FOUND_ERRORS,
    summary="One of the caller's quotes (valid or expired)",
    **AS_CUSTOMER,
)
async def get_quote(customer: Customer, quote_id: UuidId, api: Api) -> QuoteOut:
    return quote_view(await api.insurance.find_quote(customer.id, quote_id), utcnow())


# --- policies ------------------------------------------------------------------------------


@routes.post(
    "/insurance/policies",
    status_code=202,
    errors=(*FOUND_ERRORS, AccountClosed, QuoteTaken),
    summary="Buy the policy a quote prices, its premium charged to one of the caller's "
    "accounts: requested now, issued or rejected by the banking worker (GET it for its "
    "status). The same quote again is the same policy",
    **AS_CUSTOMER,
)
async def request_policy(customer: Customer, body: PolicyIn, api: Api) -> PolicyOut:
    row = await api.insurance.request_policy(customer.id, body.quote_id, body.account_id, utcnow())
    return policy_view(row)


@routes.get(
    "/insurance/policies",
    errors=CUSTOMER_ERRORS,
    summary="The caller's policies, oldest first",
    **AS_CUSTOMER,
)
async def list_policies(customer: Customer, api: Api) -> list[PolicyOut]:
    return [policy_view(row) for row in await api.insurance.policies_of(customer.id)]


@routes.get(
    "/insurance/policies/{policy_id}",
    errors=FOUND_ERRORS,
    summary="One of the caller's policies: requested, issued, rejected (with the reason) or "
    "cancelled (with the refund)",
    **AS_CUSTOMER,
)
async def get_policy(customer: Customer, policy_id: UuidId, api: Api) -> PolicyOut:
    return policy_view(await api.insurance.own_policy(customer.id, policy_id))


@routes.post(
    "/insurance/policies/{policy_id}/cancel",
    errors=(
        *FOUND_ERRORS,
        PolicyNotIssued,
        PolicyCancelled,
        (TransferRefused.status, Reason.ACCOUNT_CLOSED.value, "The account is closed"),
        (TransferRefused.status, Reason.ACCOUNT_BLOCKED.value, "The account is blocked"),
    ),
    summary="Cancel an issued policy: the premium of its unused days, pro rata, back to its "
    "account; once",
    **AS_CUSTOMER,
)
async def cancel_policy(customer: Customer, policy_id: UuidId, api: Api) -> PolicyOut:
    return policy_view(await api.insurance.cancel(customer.id, policy_id, utcnow()))

"""A throwaway OpenLDAP + ppolicy directory for tests, the demo and benchmarks."""

from lab.pki import Pki, make_pki
from lab.seed import (
    BASE_DN,
    BENCH_PASSWORD,
    DEFAULT_POLICY_DN,
    DEMO_ACCOUNTS,
    PEOPLE_DN,
    SERVICE_POLICY_DN,
    STATES,
    SeedAccount,
    bench_accounts,
    seed_ldif,
)
from lab.slapd import ROOT_DN, SERVICE_DN, Slapd, free_port, start_slapd

__all__ = [
    "BASE_DN",
    "BENCH_PASSWORD",
    "DEFAULT_POLICY_DN",
    "DEMO_ACCOUNTS",
    "PEOPLE_DN",
    "ROOT_DN",
    "SERVICE_DN",
    "SERVICE_POLICY_DN",
    "STATES",
    "Pki",
    "SeedAccount",
    "Slapd",
    "bench_accounts",
    "free_port",
    "make_pki",
    "seed_ldif",
    "start_slapd",
]

"""What ``meter COMMAND --help`` says: for each command, what it does and an example, in one place.

Help is for the person at the terminal, not for the next developer: the modules that add the
commands keep their docstrings for developers, and the tree (``meter.cli.build_parser``) takes each
command's description and examples from here. A test walks every command of the tree and fails
on one missing here, one without an example, or reStructuredText markup leaking into the text.
"""

from __future__ import annotations

HELP: dict[str, tuple[str, tuple[str, ...]]] = {
    "": ("Meter Azure OpenAI traffic: usage, cost, latency and failures per call.",
         ("meter demo", "meter proxy --upstream https://RESOURCE.openai.azure.com --port 8080",
          "meter report --ledger meter.sqlite --by team --period day")),
    "pricing": ("Look at, check and use the price tables meter prices calls with (the built-in ones, and "
                "tables of your own given with --table).",
                ("meter pricing list --model gpt-4o", "meter pricing show gpt-5",
                 "meter pricing validate my-prices.toml")),
    "pricing list": ("The models, deployment types and prices in force on a date (today by default).",
                     ("meter pricing list", "meter pricing list --model gpt-4o --deployment-type GlobalStandard",
                      "meter pricing list --at 2025-06-01 --table my-prices.toml")),
    "pricing show": ("The full price history of one model: every row with its dates, and the corrections "
                     "made to it.",
                     ("meter pricing show gpt-4o-mini",)),
    "pricing diff": ("The prices that differ between two dates.",
                     ("meter pricing diff --at 2025-01-01 --at 2026-01-01",)),
    "pricing validate": ("Check price table files; exit 1 naming the file, entry and field of each problem.",
                         ("meter pricing validate my-prices.toml",)),
    "pricing check": ("Compare the tables with a saved answer of the Azure Retail Prices API: every price that "
                      "disagrees, every meter the tables lack (exit 1 when there are findings).",
                      ("meter pricing check retail-answer.json",)),
    "pricing import-azure-retail": ("Write the prices a saved Azure Retail Prices answer has and the tables "
                                    "lack, as a table of your own to review and pass with --table.",
                                    ("meter pricing import-azure-retail retail-answer.json -o new-prices.toml",)),
    "price": ("Price one call by hand and print the breakdown: which rows, which rates, what each token class "
              "cost.",
              ("meter price gpt-4o --input 1200 --cached 1024 --output 180",
               "meter price o4-mini --input 5000 --output 2000 --reasoning 1500 --deployment-type DataZone")),
    "proxy": ("A metering reverse proxy for clients in any language: forward every request to UPSTREAM through "
              "meter and relay the answers unchanged (streams chunk by chunk). Prometheus metrics are served "
              "on their own port; spans go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set. Callers' api-key "
              "and Authorization headers go upstream and are never logged. With --budgets, a call a hard budget "
              "refuses is answered 429 (budget_exceeded) by the proxy and never sent upstream.",
              ("meter proxy --upstream https://RESOURCE.openai.azure.com --port 8080",
               "meter proxy --upstream https://RESOURCE.openai.azure.com --ledger meter.sqlite "
               "--deployments deployments.toml",
               "meter proxy --upstream https://RESOURCE.openai.azure.com --budgets budgets.toml   # hard budgets "
               "refuse with a 429")),
    "demo": ("Start an Azure OpenAI emulator on a loopback port, serve Prometheus metrics, drive a mixed workload "
             "through the openai SDK wrapped by meter, and print what meter measured (with two budgets: a soft one its "
             "calls take past its alerts, a hard one that refuses calls). No Azure account needed.",
             ("meter demo", "meter demo --seconds 600 --serve     # keep /metrics up for a dashboard",
              "meter demo --export-costs bill.csv    # then try meter reconcile on it")),
    "dashboards": ("Grafana dashboards, Prometheus alert rules and a compose stack for meter's metrics.",
                   ("meter dashboards export ./meter-dashboards",)),
    "dashboards export": ("Write the Grafana dashboards, the alert rules (with their promtool tests), "
                          "prometheus.yml and compose.yaml for your metrics' namespace and labels.",
                          ("meter dashboards export ./meter-dashboards",
                           "meter dashboards export ./dash --namespace acme_ai --label-keys team,feature")),
    "emulator": ("Serve the embedded Azure OpenAI emulator in the foreground (chat, Responses, embeddings, "
                 "streams, 429s, the content filter), to develop and test against without an Azure resource. "
                 "Needs the [emulator] extra.",
                 ("meter emulator --port 8000",)),
    "report": ("Spend, tokens, errors and latency from a ledger, grouped by team (or any attribution key), "
               "deployment, model, ... and period. Calls meter could not price are counted apart, never as 0.",
               ("meter report --ledger meter.sqlite --by team,deployment --period day --since 2026-11-01",
                "meter report --ledger meter.sqlite --by team --format csv > november.csv",
                "meter report --ledger postgresql://meter@db/meter --by team --where team=search")),
    "reprice": ("Price every call of a ledger again with the built-in tables (and tables of your own); show "
                "what would change by model, deployment type and day; --apply records the new costs and keeps "
                "the old ones.",
                ("meter reprice --ledger meter.sqlite",
                 "meter reprice --ledger meter.sqlite --tables negotiated.toml --apply")),
    "ledger": ("A ledger's contents and schema, and retention.",
               ("meter ledger info --ledger meter.sqlite",)),
    "ledger info": ("What the ledger holds: calls, dates, price versions, size (JSON).",
                    ("meter ledger info --ledger meter.sqlite",)),
    "ledger migrate": ("Bring the ledger to this meter's schema (creating it if missing).",
                       ("meter ledger migrate --ledger postgresql://meter@db/meter",)),
    "ledger prune": ("Delete the calls started before a UTC day, and their costs.",
                     ("meter ledger prune --ledger meter.sqlite --before 2026-01-01",)),
    "reconcile": ("The ledger against Azure's cost exports (EA, MCA, FOCUS; CSV or gzip; files or folders): per "
                  "day, resource, model and token class, every difference explained where the data allows. Exit "
                  "0; 3 when the gate fails (--fail-above: the unexplained share, and each resource's metered "
                  "share of its bill, unless --min-coverage sets it apart), for a monthly CI job; 4 when no "
                  "resource matches (nothing compared: pass --resource); 1 on bad input.",
                  ("meter reconcile --ledger meter.sqlite costs-2026-11.csv "
                   "--resource my-aoai=/subscriptions/.../accounts/my-aoai",
                   "meter reconcile --ledger meter.sqlite exports/ --fail-above 2%",
                   "meter reconcile --ledger meter.sqlite exports/ --fail-above 2% --min-coverage 90%",
                   "meter reconcile --ledger meter.sqlite costs.csv --write-prices negotiated.toml")),
    "budgets": ("Spend limits per team, feature, deployment or model (a budgets.toml, as Meter(budgets=...) and "
                "meter proxy --budgets read it).",
                ("meter budgets status --budgets budgets.toml --ledger meter.sqlite",)),
    "budgets status": ("Each budget in its current period: spent, held by calls in flight, limit, forecast to the "
                       "period's end at the burn so far, and when it resets. The spend is the cost of the "
                       "ledger's calls charged to each budget (--ledger, SQLite or PostgreSQL); without a ledger "
                       "it is 0, and the limits, periods and reset times are shown.",
                       ("meter budgets status --budgets budgets.toml --ledger meter.sqlite",
                        "meter budgets status --ledger postgresql://meter@db/meter --format json",
                        "meter budgets status --budgets budgets.toml --at 2026-12-31T23:00:00Z")),
}
"""Command path (``""`` for ``meter`` itself, ``"ledger prune"``) -> (what it does, examples)."""


def epilog(examples: tuple[str, ...]) -> str:
    """The examples as the help's last lines."""
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)

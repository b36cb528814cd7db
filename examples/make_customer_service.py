"""Write the small customer-service example data (self-written, seeded): intents, an FAQ and query pairs.

    python examples/make_customer_service.py

Outputs (next to this script):
  customer_service_intents.csv  text,intent           user questions labelled with one of 8 intents
  customer_service_faq.csv      id,question,answer,intent   one FAQ entry per intent (two for some)
  customer_service_pairs.csv    query,question        user question -> the FAQ question that answers it
"""
from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 13

# intent -> (FAQ entries [(question, answer)], phrasings a user might type)
INTENTS = {
    "change_pin": ([("How do I reset my card PIN?", "Open the app, choose Card > Security > Reset PIN, and confirm "
                     "with your passcode. The new PIN works at once.")],
                   ["how do i reset my card pin", "i forgot my pin", "change my pin number please",
                    "where can i set a new pin", "my pin is blocked, how do i reset it", "reset pin on my card",
                    "can i choose a different pin", "need a new pin for my debit card"]),
    "lost_card": ([("What should I do if my card is lost or stolen?", "Freeze the card in the app straight away "
                    "(Card > Freeze), then order a replacement. Frozen cards cannot be used.")],
                  ["i lost my card", "my card was stolen", "someone took my wallet with my card",
                   "cannot find my card anywhere", "block my stolen card", "card missing what do i do",
                   "i think i left my card at the shop", "freeze my lost card"]),
    "transfer_pending": ([("Why is my transfer still pending?", "Transfers usually arrive within one working day; "
                           "international ones can take up to five. Check the status under Payments.")],
                         ["my transfer is still pending", "why hasn't my transfer arrived",
                          "money sent yesterday not received", "how long does a transfer take",
                          "transfer stuck on pending", "the payment to my friend is not there yet",
                          "when will my bank transfer go through", "transfer has not completed"]),
    "exchange_rate": ([("Which exchange rate do you use?", "We use the interbank rate at the time of the "
                        "payment, plus a 0.5% fee at weekends.")],
                      ["what exchange rate do you use", "why was the currency rate so bad",
                       "how are foreign payments converted", "is there a fee for paying in euros",
                       "rate for converting dollars", "exchange rate seems wrong on my purchase",
                       "how much to change pounds to euros", "what is the conversion rate abroad"]),
    "top_up_failed": ([("Why did my top-up fail?", "Top-ups fail when the card issuer declines them or the "
                        "card has expired. Try another card or a bank transfer.")],
                      ["my top up failed", "top-up was declined", "cannot add money to my account",
                       "why did adding money not work", "top up keeps getting rejected",
                       "card top up error", "the top up did not go through", "failed to load money"]),
    "close_account": ([("How do I close my account?", "Withdraw your balance, then go to Profile > Account > "
                        "Close account. Closing is permanent.")],
                      ["i want to close my account", "how do i delete my account", "cancel my account please",
                       "terminate my membership", "please remove my account", "how can i leave the bank",
                       "shut down my account", "i no longer want this account"]),
    "refund_request": ([("How do I get a refund for a purchase?", "Ask the merchant first. If they do not "
                         "refund you within 14 days, open a dispute from the transaction.")],
                       ["i want a refund", "how do i get my money back from a shop",
                        "merchant will not refund me", "request refund for a purchase",
                        "dispute a card payment", "refund has not arrived", "item never arrived i want money back",
                        "charged for something i returned"]),
    "card_delivery": ([("When will my new card arrive?", "Cards arrive within 5 working days in the UK and 10 "
                        "elsewhere. You can track delivery in the app."),
                       ("Can I track my card delivery?", "Yes: Card > Track delivery shows where your card is.")],
                      ["when will my card arrive", "my new card has not come", "how long does card delivery take",
                       "track my card", "card still not delivered", "where is my card",
                       "is my card in the post", "status of my card order"]),
}
OPENERS = ["", "hi, ", "hello, ", "quick question: ", "please help, "]
CLOSERS = ["", "?", " thanks", " please", "!"]


def main() -> None:
    rng = random.Random(SEED)
    intents, faq, pairs = [], [], []
    n = 0
    for intent, (entries, phrasings) in INTENTS.items():
        for q, a in entries:
            n += 1
            faq.append([f"faq-{n:02d}", q, a, intent])
        for p in phrasings:
            for _ in range(2):  # two decorated variants of each phrasing
                text = (rng.choice(OPENERS) + p + rng.choice(CLOSERS)).strip()
                intents.append([text, intent])
                pairs.append([text, rng.choice(entries)[0]])
    order = list(range(len(intents)))
    rng.shuffle(order)
    write(HERE / "customer_service_intents.csv", ["text", "intent"], [intents[i] for i in order])
    write(HERE / "customer_service_pairs.csv", ["query", "question"], [pairs[i] for i in order])
    write(HERE / "customer_service_faq.csv", ["id", "question", "answer", "intent"], faq)


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


if __name__ == "__main__":
    main()

"""Write the small customer-service example data (self-written, seeded): intents, an FAQ and query pairs, and
held-out questions, in scope and out of scope (not banking), for validation and test.

    python examples/make_customer_service.py

Outputs (next to this script):
  customer_service_intents.csv       text,intent      user questions labelled with one of 8 intents (training)
  customer_service_faq.csv           id,question,answer,intent   one FAQ entry per intent (two for some)
  customer_service_pairs.csv         query,question   user question -> the FAQ question that answers it
  customer_service_intents_val.csv   text,intent      held-out wordings of the intents, and out-of-scope questions
  customer_service_intents_test.csv  text,intent      labelled `oos`; half of each go to val, half to test

The held-out files are the intent run's validation and test (its out-of-scope detector is chosen on val's `oos`
rows, set aside from the intents) and `graftkit assistant calibrate`'s --validation and --test: wordings no run
trains on, so the thresholds chosen on them are not fitted to near-copies of the training questions.
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
OOS = "oos"
# intent -> wordings of the same questions that no run trains on (held out: validation and test)
HELD_OUT = {
    "change_pin": ["i need to change the pin on my card", "how can i update my pin code",
                   "what do i do if i cannot remember my pin", "is it possible to pick my own pin",
                   "my pin stopped working, can i get a new one", "set up a fresh pin for me",
                   "the atm says my pin is wrong, how do i get a new one", "can i pick a new pin in the app"],
    "lost_card": ["i cannot find my debit card", "my purse was stolen with my bank card inside",
                  "what do i do if my card is gone", "i dropped my card somewhere in town",
                  "please block my card, it was taken", "lost my bank card yesterday",
                  "my bag with my card in it was stolen", "i have misplaced my card"],
    "transfer_pending": ["my transfer has been pending for two days", "the money i sent has not shown up",
                         "why is my payment still processing", "how long until my transfer completes",
                         "my friend says the transfer never came", "sent money this morning and it is still not there",
                         "the bank transfer i made is still waiting", "payment to my landlord has not gone through"],
    "exchange_rate": ["what rate do you use for currency conversion", "why did i get a bad rate on my dollar payment",
                      "do you charge extra to convert currency", "how is the rate for yen calculated",
                      "the conversion on my card payment looks off", "what is the fee for spending in another currency",
                      "which rate applies when i pay in dollars", "is the currency exchange free"],
    "top_up_failed": ["i could not top up my account", "my card was declined when adding funds",
                      "why will my top-up not go through", "adding money keeps failing",
                      "the app says my top up was unsuccessful", "top-up error when loading money",
                      "i tried to put money in my account and it failed", "why was my top up refused"],
    "close_account": ["i would like to cancel my bank account", "how do i shut my account permanently",
                      "please close my account for good", "i want to stop banking with you",
                      "delete my profile and my account", "how can i end my account",
                      "i am leaving, close everything", "can you terminate my bank account"],
    "refund_request": ["the shop will not give me my money back", "how do i dispute a charge",
                       "i returned the item but was not refunded", "i need a refund for a cancelled order",
                       "a merchant overcharged me and will not fix it", "get my money back for a faulty product",
                       "the seller is refusing to refund my purchase", "i was charged twice by a shop, i want a refund"],
    "card_delivery": ["my replacement card has not arrived", "how long until my new card comes",
                      "has my card been posted yet", "i am still waiting for my card in the mail",
                      "when should my debit card be delivered", "can i see where my card is",
                      "my ordered card is taking ages", "when does a new card usually get here"],
}
# held-out questions a banking assistant should hand off: everyday topics, and near misses (parcels, bills,
# other contracts) that share words with the intents; labelled OOS (the intent run sets them aside)
OUT_OF_SCOPE = [
    "what is the weather tomorrow", "what is the largest ocean", "tell me a joke", "how do i bake a chocolate cake",
    "who won the football match last night", "can you tell me a bedtime story", "recommend a good pizza recipe",
    "what is the forecast for friday", "how tall is mount everest", "who won the world cup in 2018",
    "what time is it in tokyo", "how do i update my phone software", "book me a table for two tonight",
    "where can i park near the station", "how do i reset my wifi router", "how long do i boil an egg",
    "what is the population of brazil", "what is the tallest building in the world", "play some music",
    "my online order came damaged", "translate hello into spanish", "the delivery driver left my parcel outside",
    "how many calories are in a banana", "my flight was delayed, can the airline compensate me",
    "where can i buy cheap flights", "how do i cancel my gym membership", "my phone screen is cracked",
    "what is the best way to learn french", "when does the next train to london leave", "find me a hotel in rome",
    "what is the speed of light", "how do i connect my printer", "help me write a poem", "what is the meaning of life",
    "how do i cook rice", "how many people live in china", "who is the president of the united states",
    "my neighbour's dog keeps barking", "what films are on at the cinema", "what is on tv tonight",
    "my parcel from the online shop is late", "how do i reset my game console", "the courier lost my delivery",
    "where can i recycle batteries", "my pizza order arrived cold", "what year did the titanic sink",
    "how do i renew my passport", "how do i grow tomatoes", "what is the best laptop to buy",
    "can i swap my shoes for a bigger size", "set an alarm for 7am", "is the museum open on sunday",
    "how do i unblock a number on my phone", "how do i get to the airport", "my internet is not working",
    "what is a good birthday present for my mum", "is it going to rain this weekend", "convert 10 miles to kilometres",
    "what is a good name for a dog", "how hot is the sun", "how far away is the moon", "my water bill seems wrong",
    "where is the nearest hospital", "how do i change a light bulb", "how do i change my email password",
    "track my online shopping order", "my broadband bill is too high", "what are the symptoms of flu",
    "how do i fix a flat tyre", "what is the score in the cricket", "who wrote romeo and juliet",
    "recommend a tv series to watch",
]
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
    # alternate held-out questions go to validation and test: each intent and OOS is in both
    held = [(text, intent) for intent, texts in HELD_OUT.items() for text in texts] + [(t, OOS) for t in OUT_OF_SCOPE]
    for part, name in enumerate(("val", "test")):
        rows = [[text, intent] for i, (text, intent) in enumerate(held) if i % 2 == part]
        write(HERE / f"customer_service_intents_{name}.csv", ["text", "intent"], rows)


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


if __name__ == "__main__":
    main()

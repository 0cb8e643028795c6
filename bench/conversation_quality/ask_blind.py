"""Ask the offline partner every message and conversation of a blind set, exactly as chat does.

    .venv/bin/python bench/conversation_quality/ask_blind.py heldout3 [--json out.json]

A blind set is a folder beside this file (heldout, heldout2, heldout3) with messages.yaml and
conversations.yaml, written by a tester who had not read the content, the engine or the other sets.

Per message: a DialogueRequest like chat's (no history, temperature 0, the persona's name, the
situation's time of day); per conversation: each reply is fed back as history, as chat does.
Prints id, message, reply, the engine's intent and confidence. Judging is done by a person
(judgements.yaml), not here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from chat_service.app import chat_catalogue
from run import chat_like_request  # this folder's bench: the same request as chat
from workplace_kit.ai.offline_dialogue import OfflineDialogueEngine
from workplace_kit.ai.types import Turn

HERE = Path(__file__).resolve().parent
SETS = sorted(p.name for p in HERE.glob("heldout*") if p.is_dir())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("set", choices=SETS, help="the blind set's folder")
    parser.add_argument("--json", type=Path, help="also write the replies here")
    args = parser.parse_args()
    folder = HERE / args.set
    catalogue = chat_catalogue()
    engine = OfflineDialogueEngine(catalogue)
    out: dict[str, Any] = {"messages": [], "conversations": []}

    def ask(item: dict[str, Any], message: str, history: tuple[Turn, ...]) -> Any:
        return engine.choose_reply(chat_like_request(catalogue, item, message, history))

    for item in yaml.safe_load((folder / "messages.yaml").read_text(encoding="utf-8")):
        reply = ask(item, item["message"], ())
        where = f"{item['partner']}/{item['situation']}/{item['time_of_day']}"
        print(f"[{item['id']}] {where}  intent={reply.intent} conf={reply.confidence:.2f}")
        print(f"  > {item['message']}\n  < {reply.text}\n")
        out["messages"].append(
            {
                "id": item["id"],
                "message": item["message"],
                "reply": reply.text,
                "intent": reply.intent,
                "confidence": reply.confidence,
            }
        )

    for conv in yaml.safe_load((folder / "conversations.yaml").read_text(encoding="utf-8")):
        print(f"=== {conv['id']} {conv['language']} {conv['partner']}/{conv['situation']}/{conv['time_of_day']}")
        history: tuple[Turn, ...] = ()
        turns = []
        for number, line in enumerate(conv["turns"], 1):
            reply = ask(conv, line, history)
            print(f"  [{conv['id']}.{number}] intent={reply.intent} conf={reply.confidence:.2f}")
            print(f"    > {line}\n    < {reply.text}")
            history = (*history, Turn("user", line), Turn("model", reply.text))
            turns.append(
                {
                    "turn": number,
                    "message": line,
                    "reply": reply.text,
                    "intent": reply.intent,
                    "confidence": reply.confidence,
                }
            )
        out["conversations"].append({"id": conv["id"], "turns": turns})
        print()

    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Prompting strategies: how a help-seeker's post becomes chat messages, and how the model's output
splits into the answer annotators see and the reasoning kept for researchers.
"""
import inspect
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

THINK = ("<think>", "</think>")
ANSWER = ("<answer>", "</answer>")

STRATEGIES: dict[str, type["Strategy"]] = {}


class ParseError(ValueError):
    """The output cannot be used as a response; `reason` says why, for the job's failure list."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class TemplateError(ValueError):
    """A custom strategy's template or delimiters cannot work; the message says what to fix."""


@dataclass(frozen=True)
class Parsed:
    answer: str
    reasoning: str = ""


def get_strategy(name, **options):
    try:
        cls = STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; choose one of: {known}") from None
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise ValueError(f"strategy {name!r}: {exc}") from None
    return cls(**options)


def _chat(system, user, system_role):
    if system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return [{"role": "user", "content": f"{system}\n\n{user}"}]


def _require_post(post):
    if not isinstance(post, str) or not post.strip():
        raise ValueError("the post is empty")


class Strategy(ABC):
    """One way of prompting; defining a subclass with a `name` registers it in STRATEGIES."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Abstract bases leave `name` empty; every concrete class is registered by being defined.
        if cls.__dict__.get("name"):
            if cls.name in STRATEGIES:
                raise TypeError(f"strategy name {cls.name!r} is already taken")
            STRATEGIES[cls.name] = cls

    def __init__(self, *, system_role=True):
        # Some chat templates (Gemma's, for one) reject a system message; then the instructions
        # go at the top of the user message instead.
        self.system_role = system_role

    @abstractmethod
    def messages(self, post):
        """The OpenAI-style chat messages that ask the model to reply to `post`."""

    @abstractmethod
    def parse(self, text, finish_reason=None):
        """The Parsed answer and reasoning in `text`, or ParseError with the reason.

        `finish_reason` is the server's ("stop", "length", ...); None when unknown.
        """


def _find(text, tag, start=0):
    match = re.compile(re.escape(tag), re.IGNORECASE).search(text, start)
    return match.span() if match else None


def split_reasoning(text, think_open, think_close, finish_reason, stop_at=None):
    """Return (reasoning, position after it); stop_at is where the answer starts, if known."""
    opened = _find(text, think_open)
    if opened and (stop_at is None or opened[0] < stop_at):
        closed = _find(text, think_close, opened[1])
        if closed is None:
            if finish_reason == "length":
                raise ParseError(f"output truncated inside {think_open} (max_tokens reached "
                                 f"before the answer)")
            raise ParseError(f"{think_open} is never closed: no {think_close} after it")
        return text[opened[1]:closed[0]].strip(), closed[1]
    closed = _find(text, think_close)
    if closed and (stop_at is None or closed[0] < stop_at):
        return text[:closed[0]].strip(), closed[1]
    return "", 0


def parse_tagged(text, finish_reason, think, answer):
    """Split `text` into a Parsed by the (open, close) delimiter pairs `think` and `answer`.

    - Reasoning is what lies between the think delimiters. A chat template may open <think>
      itself, so text before a lone closing delimiter counts as reasoning. Missing reasoning is
      allowed: vLLM's `--reasoning-parser` moves it out of the text.
    - The answer must be non-empty and hold no delimiter: a stray tag in front of annotators
      would show which strategy wrote the response, and so break blinding.
    - A missing closing answer delimiter is accepted only when the model stopped by itself
      (finish_reason "stop"); "length" means truncated, and the error says where it was cut.
    Delimiters match case-insensitively.
    """
    if not text or not text.strip():
        raise ParseError("output empty")
    truncated = finish_reason == "length"
    first_answer = _find(text, answer[0])
    reasoning, pos = split_reasoning(text, *think, finish_reason,
                                     stop_at=first_answer[0] if first_answer else None)
    opened = _find(text, answer[0], pos)
    if opened is None:
        if truncated:
            raise ParseError(f"output truncated before {answer[0]} (max_tokens reached)")
        raise ParseError(f"no {answer[0]} tag")
    closed = _find(text, answer[1], opened[1])
    if closed is None:
        if truncated:
            raise ParseError(f"output truncated inside {answer[0]} (max_tokens reached)")
        if finish_reason != "stop":
            raise ParseError(f"no {answer[1]} after {answer[0]}, and the output may be cut off")
        # The model ended its turn itself, so the answer is complete without the closing tag.
        body = text[opened[1]:]
    else:
        body = text[opened[1]:closed[0]]
    body = body.strip()
    if not body:
        raise ParseError("answer empty")
    for tag in (*think, *answer):
        if _find(body, tag):
            raise ParseError(f"answer contains a stray {tag} tag")
    return Parsed(answer=body, reasoning=reasoning)


ROLE = (
    "You are replying to a post from someone who is going through something difficult and has "
    "reached out for support. Your reply will be read by that person."
)

REPLY_GUIDE = (
    "Write to them directly, warmly and specifically about what they wrote, in a few short "
    "paragraphs at most. Do not diagnose, lecture or use clinical terms."
)

TAG_FORMAT = (
    "Format: first your reasoning between <think> and </think>, then your reply between <answer> "
    "and </answer>. Only the text inside <answer> reaches the person, so it must stand on its own: "
    "no headings, tags, or mention of the steps above."
)


class Base(Strategy):
    name = "base"
    label = "Direct answer"
    description = "The model replies to the post directly; no reasoning is asked for."

    def messages(self, post):
        _require_post(post)
        return _chat(f"{ROLE} {REPLY_GUIDE} Reply with the message only.", post, self.system_role)

    def parse(self, text, finish_reason=None):
        if not text or not text.strip():
            raise ParseError("output empty")
        # A reasoning model may think aloud even when not asked to; that part must not be shown
        # to annotators, so it goes to reasoning like any other strategy's.
        reasoning, pos = split_reasoning(text, *THINK, finish_reason)
        if finish_reason == "length":
            raise ParseError("output truncated (max_tokens reached mid-reply)")
        answer = text[pos:].strip()
        if not answer:
            raise ParseError("answer empty")
        return Parsed(answer=answer, reasoning=reasoning)


class TaggedStrategy(Strategy):
    """A strategy whose instructions ask for <think> reasoning, then an <answer>."""

    @abstractmethod
    def instructions(self):
        """The system prompt: the reasoning steps and the output format."""

    def messages(self, post):
        _require_post(post)
        # The format reminder comes last, where models follow it most reliably.
        user = (f"The post:\n\n{post}\n\nReason inside <think>...</think>, then write your reply "
                f"inside <answer>...</answer>.")
        return _chat(self.instructions(), user, self.system_role)

    def parse(self, text, finish_reason=None):
        return parse_tagged(text, finish_reason, THINK, ANSWER)


class ChainOfEmpathy(TaggedStrategy):
    """Chain of Empathy (Lee et al., arXiv 2311.04915): emotion, causes, one therapy's lens."""

    therapy: ClassVar[str] = ""
    lens: ClassVar[str] = ""

    def instructions(self):
        return (
            f"{ROLE}\n\n"
            "Before replying, reason through these steps:\n"
            "1. Emotion: name the emotion or emotions the post expresses.\n"
            "2. Causes: identify the personal and situational factors behind that emotion.\n"
            f"3. {self.therapy}: {self.lens}\n"
            "Then write your reply, guided by that reasoning.\n\n"
            f"{REPLY_GUIDE}\n\n{TAG_FORMAT}"
        )


class ChainOfEmpathyCBT(ChainOfEmpathy):
    name = "coe-cbt"
    label = "Chain of Empathy: CBT"
    description = ("Names the emotion and its causes, then the negative thought pattern behind it "
                   "and a more balanced reframing (cognitive behavioural therapy).")
    therapy = "Cognitive behavioural therapy"
    lens = ("find the negative thought pattern feeding the emotion (for example expecting the "
            "worst, all-or-nothing thinking, or assuming what others think), and work out a more "
            "balanced way of seeing the situation that the reply can gently offer.")


class ChainOfEmpathyDBT(ChainOfEmpathy):
    name = "coe-dbt"
    label = "Chain of Empathy: DBT"
    description = ("Names the emotion and its causes, then how dysregulated the emotion is and how "
                   "to regulate it (dialectical behaviour therapy).")
    therapy = "Dialectical behaviour therapy"
    lens = ("judge how intense the emotion is and whether it is overwhelming the person's "
            "ability to cope, then choose how the reply can accept the feeling as valid while "
            "helping them calm and regulate it with a concrete, manageable step.")


class ChainOfEmpathyPCP(ChainOfEmpathy):
    name = "coe-pcp"
    label = "Chain of Empathy: person-centred"
    description = ("Names the emotion and its causes, then what would help the person understand "
                   "themselves and grow more self-aware (person-centred therapy).")
    therapy = "Person-centred therapy"
    lens = ("consider what the person feels, values and needs beneath what they say, and how the "
            "reply can reflect this back without judging or rushing to advise, so that they "
            "understand themselves better and become more aware of their own feelings.")


class ChainOfEmpathyRT(ChainOfEmpathy):
    name = "coe-rt"
    label = "Chain of Empathy: reality therapy"
    description = ("Names the emotion and its causes, then the unmet need behind the "
                   "dissatisfaction and a problem-focused way to cope (reality therapy).")
    therapy = "Reality therapy"
    lens = ("identify the need that is going unmet and causing the dissatisfaction (belonging, "
            "achievement, freedom, enjoyment or security), what is within the person's control, "
            "and a problem-focused step they could take towards meeting that need.")


class EmpathyR1(TaggedStrategy):
    """Empathy-R1 style (arXiv 2509.14851): four levels of reasoning, then the reply."""

    name = "empathy-r1"
    label = "Empathy-R1: four-level reasoning"
    description = ("Reasons in four levels: emotions and context, causes and beliefs, what the "
                   "person wants (validation, understanding or advice), then the response "
                   "strategy; then replies.")

    def instructions(self):
        return (
            f"{ROLE}\n\n"
            "Before replying, reason in four levels, in order, labelling each one:\n"
            "Level 1, emotions and context: what the person feels, and the situation they "
            "describe.\n"
            "Level 2, causes and beliefs: what lies behind those emotions, including what the "
            "person believes about themselves, other people or the future.\n"
            "Level 3, intention: what they hope to get from a reply: validation, understanding, "
            "or advice (say which, and why).\n"
            "Level 4, response strategy: how the reply will meet that intention: what to "
            "acknowledge, what to offer, and in what tone.\n"
            "Then write your reply, following the strategy from level 4.\n\n"
            f"{REPLY_GUIDE}\n\n{TAG_FORMAT}"
        )


class Custom(Strategy):
    name = "custom"
    label = "Custom template"
    description = ("A prompt the researcher writes, with {post} where the post goes, and their own "
                   "delimiters around the reasoning and the answer.")

    def __init__(self, template, *, system="", reasoning_open=THINK[0], reasoning_close=THINK[1],
                 answer_open=ANSWER[0], answer_close=ANSWER[1], system_role=True):
        super().__init__(system_role=system_role)
        self.template, self.system = template, system
        self.think = (reasoning_open, reasoning_close)
        self.answer = (answer_open, answer_close)
        self.check()

    def check(self):
        if not isinstance(self.template, str) or not self.template.strip():
            raise TemplateError("the template is empty")
        if not isinstance(self.system, str):
            raise TemplateError("the system prompt must be text (empty for none)")
        # Only {post} is filled in, so any other {name} is almost certainly a typo like {Post}.
        others = sorted(set(re.findall(r"\{\s*\w+\s*\}", self.template)) - {"{post}"})
        if others:
            raise TemplateError(f"unknown placeholder {others[0]}: only {{post}} is filled in")
        if "{post}" not in self.template:
            raise TemplateError("the template must contain {post}, where the post is put")
        delimiters = {
            "reasoning opening": self.think[0], "reasoning closing": self.think[1],
            "answer opening": self.answer[0], "answer closing": self.answer[1],
        }
        for what, value in delimiters.items():
            if not isinstance(value, str) or not value.strip():
                raise TemplateError(f"the {what} delimiter is empty")
        names = list(delimiters)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                a, b = delimiters[first].lower(), delimiters[second].lower()
                if a == b:
                    raise TemplateError(f"the {first} and {second} delimiters are identical "
                                        f"({delimiters[first]!r})")
                if a in b or b in a:
                    raise TemplateError(f"the {first} delimiter {delimiters[first]!r} and the "
                                        f"{second} delimiter {delimiters[second]!r} overlap, so "
                                        f"the output could not be split reliably")
        prompt = f"{self.system}\n{self.template}".lower()
        for what, value in delimiters.items():
            if value.lower() not in prompt:
                raise TemplateError(f"the prompt never mentions the {what} delimiter {value!r}, "
                                    f"so the model cannot know to write it")

    def messages(self, post):
        _require_post(post)
        # str.replace, not str.format: researchers' templates may hold literal braces (JSON).
        user = self.template.replace("{post}", post)
        if not self.system.strip():
            return [{"role": "user", "content": user}]
        return _chat(self.system, user, self.system_role)

    def parse(self, text, finish_reason=None):
        return parse_tagged(text, finish_reason, self.think, self.answer)

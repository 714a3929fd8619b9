"""Prompting strategies: the prompts they build, and how they split (or refuse) model outputs.
No database, no server: strategies are pure functions of their input.
"""
import pytest

from generation.strategies import (
    STRATEGIES, Base, ParseError, Parsed, Strategy, TemplateError, get_strategy,
)

POST = ("I failed my driving test for the third time today. Everyone I know passed first try "
        "and I feel like such an idiot. Maybe I'm just not meant to drive.")
BUILT_IN = ["base", "coe-cbt", "coe-dbt", "coe-pcp", "coe-rt", "empathy-r1"]
TAGGED = ["coe-cbt", "coe-dbt", "coe-pcp", "coe-rt", "empathy-r1"]
CUSTOM_TEMPLATE = ("Someone wrote: {post}\nThink it through inside [R]...[/R], then reply inside "
                   "[A]...[/A]. Reply as JSON-free prose, not {\"reply\": ...}.")


def custom(**options):
    options = {"template": CUSTOM_TEMPLATE, "reasoning_open": "[R]", "reasoning_close": "[/R]",
               "answer_open": "[A]", "answer_close": "[/A]", **options}
    return get_strategy("custom", **options)


def all_strategies():
    return [get_strategy(name) for name in BUILT_IN] + [custom()]


def text_of(messages):
    return "\n".join(message["content"] for message in messages)


# Registry --------------------------------------------------------------------------------------

def test_every_strategy_is_listed_for_the_picker_with_label_and_description():
    assert list(STRATEGIES) == BUILT_IN + ["custom"]
    for cls in STRATEGIES.values():
        assert cls.label.strip() and cls.description.strip()
    assert STRATEGIES["base"].label == "Direct answer"


def test_unknown_strategy_or_option_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown strategy 'coe'.*coe-cbt"):
        get_strategy("coe")
    with pytest.raises(ValueError, match="strategy 'base'.*temperature"):
        get_strategy("base", temperature=0.7)
    with pytest.raises(ValueError, match="strategy 'custom'.*template"):
        get_strategy("custom")


def test_adding_a_strategy_is_defining_one_class():
    class Shout(Strategy):
        name = "test-shout"
        label = "Shout"
        description = "Replies in capitals."

        def messages(self, post):
            return [{"role": "user", "content": post.upper()}]

        def parse(self, text, finish_reason=None):
            return Parsed(answer=text.upper())

    try:
        strategy = get_strategy("test-shout")
        assert strategy.messages("hi") == [{"role": "user", "content": "HI"}]
        assert STRATEGIES["test-shout"].label == "Shout"
        with pytest.raises(TypeError, match="already taken"):
            type("Again", (Shout,), {"name": "test-shout"})
    finally:
        STRATEGIES.pop("test-shout", None)


# Prompts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", all_strategies(), ids=lambda s: s.name)
def test_messages_are_openai_chat_messages_carrying_the_post_verbatim(strategy):
    messages = strategy.messages(POST)
    assert all(set(m) == {"role", "content"} for m in messages)
    assert all(isinstance(m["content"], str) and m["content"] for m in messages)
    assert messages[-1]["role"] == "user"
    assert POST in messages[-1]["content"]
    assert [m["role"] for m in messages] in (["system", "user"], ["user"])


@pytest.mark.parametrize("name", BUILT_IN)
def test_without_a_system_role_the_instructions_move_into_the_user_message(name):
    with_system = get_strategy(name).messages(POST)
    without = get_strategy(name, system_role=False).messages(POST)
    assert [m["role"] for m in without] == ["user"]
    assert with_system[0]["content"] in without[0]["content"]
    assert POST in without[0]["content"]


@pytest.mark.parametrize("strategy", all_strategies(), ids=lambda s: s.name)
@pytest.mark.parametrize("post", ["", "   \n", None])
def test_an_empty_post_is_refused(strategy, post):
    with pytest.raises(ValueError, match="post is empty"):
        strategy.messages(post)


def test_base_asks_for_the_reply_alone_without_reasoning():
    prompt = text_of(Base().messages(POST)).lower()
    assert "reply with the message only" in prompt
    assert "<think>" not in prompt and "reason" not in prompt


@pytest.mark.parametrize("name,lens", [
    ("coe-cbt", ["negative thought pattern", "balanced way of seeing"]),
    ("coe-dbt", ["overwhelming", "regulate"]),
    ("coe-pcp", ["understand themselves", "more aware of their own feelings"]),
    ("coe-rt", ["need that is going unmet", "dissatisfaction", "problem-focused"]),
])
def test_chain_of_empathy_names_emotion_and_causes_then_reasons_in_its_therapy(name, lens):
    prompt = text_of(get_strategy(name).messages(POST)).lower()
    emotion, causes = prompt.index("1. emotion"), prompt.index("2. causes")
    assert "personal and situational factors" in prompt
    therapy_step = prompt.index("3. ")
    assert emotion < causes < therapy_step
    for phrase in lens:
        assert phrase in prompt[therapy_step:], phrase
    assert "<think>" in prompt and "<answer>" in prompt


def test_the_four_chain_of_empathy_variants_differ_only_in_the_therapy_step():
    prompts = {name: get_strategy(name).messages(POST)[0]["content"] for name in TAGGED[:4]}
    assert len(set(prompts.values())) == 4
    heads = {prompt.split("3. ")[0] for prompt in prompts.values()}
    assert len(heads) == 1


def test_empathy_r1_asks_for_four_levels_in_order_then_the_answer():
    prompt = text_of(get_strategy("empathy-r1").messages(POST)).lower()
    levels = [prompt.index(f"level {n}, {what}") for n, what in
              [(1, "emotions and context"), (2, "causes and beliefs"), (3, "intention"),
               (4, "response strategy")]]
    assert levels == sorted(levels)
    assert "validation, understanding" in prompt and "or advice" in prompt
    assert prompt.index("<think>") < prompt.index("<answer>")


# Parsing: base ---------------------------------------------------------------------------------

def test_base_output_is_the_answer_and_reasoning_is_empty():
    assert Base().parse("  That sounds so frustrating.\n", "stop") == Parsed(
        answer="That sounds so frustrating.", reasoning="")


def test_base_keeps_a_reasoning_model_s_thinking_away_from_the_answer():
    parsed = Base().parse("<think>They feel ashamed.</think>\nThree tries is not failure.", "stop")
    assert parsed == Parsed(answer="Three tries is not failure.", reasoning="They feel ashamed.")


@pytest.mark.parametrize("text,finish_reason,reason", [
    ("", "stop", "output empty"),
    ("  \n ", None, "output empty"),
    ("That sounds so frustr", "length", "output truncated"),
    ("<think>They feel asham", "length", "output truncated inside <think>"),
    ("<think>They feel ashamed, and", "stop", "<think> is never closed"),
    ("<think>They feel ashamed.</think>  ", "stop", "answer empty"),
])
def test_base_flags_outputs_it_cannot_use(text, finish_reason, reason):
    with pytest.raises(ParseError, match=reason) as caught:
        Base().parse(text, finish_reason)
    assert reason in caught.value.reason


# Parsing: tagged strategies --------------------------------------------------------------------

GOOD = ("<think>\nLevel 1: shame and discouragement.\nLevel 4: validate, then reframe.\n</think>\n"
        "<answer>\nThird tries are common, and they say nothing about your worth.\n</answer>")


@pytest.mark.parametrize("name", TAGGED)
def test_tagged_output_splits_into_answer_and_reasoning(name):
    parsed = get_strategy(name).parse(GOOD, "stop")
    assert parsed.answer == "Third tries are common, and they say nothing about your worth."
    assert parsed.reasoning == ("Level 1: shame and discouragement.\n"
                                "Level 4: validate, then reframe.")


@pytest.mark.parametrize("text,finish_reason,expected", [
    # Tags in another case, and text after the answer, are fine.
    ("<THINK>why</THINK><Answer>Hi.</Answer> trailing", "stop", Parsed("Hi.", "why")),
    # The chat template opened <think>, so the output starts inside it.
    ("why, at length</think>\n<answer>Hi.</answer>", "stop", Parsed("Hi.", "why, at length")),
    # vLLM's reasoning parser took the reasoning out of the text.
    ("<answer>Hi.</answer>", "stop", Parsed("Hi.", "")),
    # The model ended its turn without the closing tag: the answer is complete.
    ("<think>why</think><answer>Hi there.", "stop", Parsed("Hi there.", "why")),
    # Cut off after the answer was closed: the answer is whole.
    ("<think>why</think><answer>Hi.</answer> and then some rambl", "length",
     Parsed("Hi.", "why")),
    # Reasoning that mentions the answer tag does not confuse the split.
    ("<think>I will put the reply in <answer> tags.</think><answer>Hi.</answer>", "stop",
     Parsed("Hi.", "I will put the reply in <answer> tags.")),
])
def test_tagged_parsing_accepts_what_is_complete(text, finish_reason, expected):
    assert get_strategy("empathy-r1").parse(text, finish_reason) == expected


@pytest.mark.parametrize("text,finish_reason,reason", [
    ("", "stop", "output empty"),
    ("Third tries are common.", "stop", "no <answer> tag"),
    ("<think>why</think> Third tries are common.", "stop", "no <answer> tag"),
    ("<think>why</think><answer>   </answer>", "stop", "answer empty"),
    ("<think>Level 1: shame. Level 2: the belief th", "length",
     "output truncated inside <think>"),
    ("<think>Level 1: shame.", "stop", "<think> is never closed"),
    ("<think>Level 1: shame. <answer>Hi.</answer>", "stop", "<think> is never closed"),
    ("<think>why</think>\n", "length", "output truncated before <answer>"),
    ("<think>why</think><answer>Third tries are com", "length",
     "output truncated inside <answer>"),
    ("<think>why</think><answer>Third tries are common.", None, "no </answer> after <answer>"),
    ("<think>why</think><answer>Hi.<think>more</think></answer>", "stop",
     "answer contains a stray <think> tag"),
    ("<answer><answer>Hi.</answer>", "stop", "answer contains a stray <answer> tag"),
])
def test_tagged_parsing_flags_broken_and_truncated_outputs(text, finish_reason, reason):
    for name in TAGGED:
        with pytest.raises(ParseError) as caught:
            get_strategy(name).parse(text, finish_reason)
        assert reason in caught.value.reason, (name, caught.value.reason)


# Custom ----------------------------------------------------------------------------------------

def test_custom_template_puts_the_post_in_and_keeps_literal_braces():
    messages = custom().messages(POST)
    assert messages == [{"role": "user", "content": CUSTOM_TEMPLATE.replace("{post}", POST)}]
    assert '{"reply": ...}' in messages[0]["content"]


def test_custom_system_prompt_is_its_own_message_or_merged():
    system = "You are a kind peer supporter."
    assert custom(system=system).messages(POST)[0] == {"role": "system", "content": system}
    merged = custom(system=system, system_role=False).messages(POST)
    assert len(merged) == 1 and merged[0]["content"].startswith(system)


def test_custom_output_is_split_by_the_researcher_s_delimiters():
    strategy = custom()
    assert strategy.parse("[R]they feel ashamed[/R] [A]You are not an idiot.[/A]", "stop") == \
        Parsed(answer="You are not an idiot.", reasoning="they feel ashamed")
    with pytest.raises(ParseError, match=r"no \[A\] tag"):
        strategy.parse("<think>x</think><answer>Hi.</answer>", "stop")
    with pytest.raises(ParseError, match=r"truncated inside \[R\]"):
        strategy.parse("[R]they feel", "length")


def test_custom_defaults_to_think_and_answer_tags():
    strategy = get_strategy("custom", template="Reply to {post} inside <think></think> then "
                                               "<answer></answer>.")
    assert strategy.parse(GOOD, "stop").answer.startswith("Third tries")


@pytest.mark.parametrize("options,message", [
    ({"template": ""}, "the template is empty"),
    ({"template": "Reply to this: [R][/R][A][/A]"}, "must contain {post}"),
    ({"template": "Reply to {Post}: {post} [R][/R][A][/A]"}, "unknown placeholder {Post}"),
    ({"template": "Reply to { post } [R][/R][A][/A]"}, "unknown placeholder { post }"),
    ({"system": None}, "system prompt must be text"),
    ({"answer_open": ""}, "the answer opening delimiter is empty"),
    ({"reasoning_close": "  "}, "the reasoning closing delimiter is empty"),
    ({"answer_close": "[A]"}, "answer opening and answer closing delimiters are identical"),
    ({"reasoning_open": "[A]"}, "reasoning opening and answer opening delimiters are identical"),
    ({"answer_close": "[a]"}, "are identical"),
    ({"template": "{post} [R] [/R] [A] [/A] Answer: End Answer:", "answer_open": "Answer:",
      "answer_close": "End Answer:"}, "overlap"),
    ({"answer_close": "[/ANSWER]"}, "never mentions the answer closing delimiter '[/ANSWER]'"),
])
def test_custom_template_errors_say_what_to_fix(options, message):
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("{", r"\{")):
        custom(**options)


def test_custom_delimiters_may_be_mentioned_in_the_system_prompt_instead():
    strategy = custom(template="{post}", system="Reason in [R]...[/R], reply in [A]...[/A].")
    assert strategy.parse("[R]x[/R][A]Hello.[/A]", "stop").answer == "Hello."

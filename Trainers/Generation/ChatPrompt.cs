using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Generation;

/// <summary>
/// A conversation turned into the token ids the model continues: the messages rendered by the model's chat template as in
/// training (<see cref="ChatTemplate"/>), then the template's opening of an assistant turn (the generation prompt). The
/// ids at which an answer ends are the tokenizer's EOS and the template's end-of-turn token. A model's own Jinja template
/// renders the whole conversation with <c>add_generation_prompt</c>, as transformers' <c>apply_chat_template</c> does; its
/// end-of-turn token is found by rendering a probe turn, not by recognising markers.
/// </summary>
public static class ChatPrompt
{
    /// <summary>The ids of <paramref name="messages"/> followed by the assistant-turn opening; BOS first when <paramref name="withBos"/>.</summary>
    public static int[] Encode(ChatTemplate template, ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool withBos = true)
    {
        // The Jinja template writes bos_token itself, so the whole rendering is the prompt.
        if (template.Kind == ChatTemplateKind.Jinja) return tokenizer.Encode(template.Render(messages, addGenerationPrompt: true));
        var ids = new List<int>();
        if (withBos && tokenizer.BosId is int bos) ids.Add(bos);
        foreach (var segment in template.Render(messages))
        {
            ids.AddRange(tokenizer.Encode(segment.Text));
            if (segment.EosAfter && tokenizer.EosId is int eos) ids.Add(eos);
        }
        ids.AddRange(tokenizer.Encode(GenerationPrefix(template.Kind)));
        return [.. ids];
    }

    /// <summary>The text that opens an assistant turn.</summary>
    public static string GenerationPrefix(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.ChatMl => "<|im_start|>assistant\n",
        ChatTemplateKind.Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
        _ => "<|assistant|>\n",
    };

    /// <summary>
    /// Ids that end an answer under <paramref name="template"/>: EOS, and the end-of-turn token. For a Jinja template that
    /// is the first token the template writes after an assistant turn's text, when it is one multi-character token (a
    /// special token such as <c>&lt;end_of_turn&gt;</c>), found by rendering a probe conversation.
    /// </summary>
    public static IReadOnlySet<int> StopIds(ChatTemplate template, ITextTokenizer tokenizer)
    {
        if (template.Kind != ChatTemplateKind.Jinja) return StopIds(template.Kind, tokenizer);
        var stops = new HashSet<int>();
        if (tokenizer.EosId is int eos) stops.Add(eos);
        const string Probe = "QPEFTPROBEANSWER";
        try
        {
            string text = template.Render([new ChatMessage("user", "hi"), new ChatMessage("assistant", Probe)], addGenerationPrompt: false);
            int at = text.LastIndexOf(Probe, StringComparison.Ordinal);
            if (at >= 0)
            {
                int[] after = tokenizer.Encode(text[(at + Probe.Length)..]);
                // Decode skips special tokens: an empty decoding, or several characters in one token, is the turn's end marker.
                if (after.Length > 0 && tokenizer.Decode([after[0]]) is { } piece && (piece.Length == 0 || piece.Trim().Length > 1))
                    stops.Add(after[0]);
            }
        }
        catch (QuantPeft.Trainers.Data.Templates.TemplateException)
        {
            // A template that refuses the probe conversation still stops at EOS.
        }
        return stops;
    }

    /// <summary>Ids that end an answer: EOS, and the template's end-of-turn marker when the tokenizer has it as one token.</summary>
    public static IReadOnlySet<int> StopIds(ChatTemplateKind kind, ITextTokenizer tokenizer)
    {
        var stops = new HashSet<int>();
        if (tokenizer.EosId is int eos) stops.Add(eos);
        string? marker = kind switch
        {
            ChatTemplateKind.ChatMl => "<|im_end|>",
            ChatTemplateKind.Llama3 => "<|eot_id|>",
            _ => null,
        };
        if (marker is not null && tokenizer.Encode(marker) is [int id]) stops.Add(id);
        return stops;
    }

    /// <summary>
    /// The ids that close an assistant turn after generation, so the next turn follows the template: what comes after the
    /// stop token (ChatML's newline), or the whole end-of-turn when the answer ran out of tokens instead.
    /// </summary>
    public static int[] TurnClosing(ChatTemplateKind kind, ITextTokenizer tokenizer, bool stopped) => kind switch
    {
        ChatTemplateKind.ChatMl => tokenizer.Encode(stopped ? "\n" : "<|im_end|>\n"),
        ChatTemplateKind.Llama3 => stopped ? [] : tokenizer.Encode("<|eot_id|>"),
        _ => stopped || tokenizer.EosId is not int eos ? [] : [eos],
    };
}

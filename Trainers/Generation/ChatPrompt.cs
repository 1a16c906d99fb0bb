using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Generation;

/// <summary>
/// A conversation turned into the token ids the model continues: the messages rendered by the model's chat template as in
/// training (<see cref="ChatTemplate"/>), then the template's opening of an assistant turn (the generation prompt). The
/// ids at which an answer ends are the tokenizer's EOS and the template's end-of-turn token.
/// </summary>
public static class ChatPrompt
{
    /// <summary>The ids of <paramref name="messages"/> followed by the assistant-turn opening; BOS first when <paramref name="withBos"/>.</summary>
    public static int[] Encode(ChatTemplate template, ITextTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool withBos = true)
    {
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

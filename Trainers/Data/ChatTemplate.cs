using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>The conversation formats QuantPeft renders itself (it does not run Jinja).</summary>
public enum ChatTemplateKind
{
    /// <summary>QuantPeft's plain-text format; used when the model declares no template or one not recognised. See docs/data.md.</summary>
    Default,
    /// <summary>ChatML (<c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;\n</c>): Qwen2 and many fine-tunes.</summary>
    ChatMl,
    /// <summary>Llama 3 headers (<c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n...&lt;|eot_id|&gt;</c>).</summary>
    Llama3,
}

/// <summary>A piece of a rendered conversation.</summary>
/// <param name="Text">Text to tokenize.</param>
/// <param name="Train">Whether its tokens are loss targets (assistant content and its end-of-turn marker).</param>
/// <param name="EosAfter">Whether an EOS token follows (and is a target), for formats with no textual end-of-turn marker.</param>
public sealed record ChatSegment(string Text, bool Train, bool EosAfter = false);

/// <summary>
/// Renders <c>messages</c> records into segments whose tokens are or are not trained on. The template
/// is picked from the <c>chat_template</c> a model folder declares when it is one of the simple known
/// formats (by its marker tokens); anything else gets <see cref="ChatTemplateKind.Default"/>.
/// </summary>
public sealed class ChatTemplate
{
    private ChatTemplate(ChatTemplateKind kind, string reason)
    {
        Kind = kind;
        Reason = reason;
    }

    /// <summary>The format used.</summary>
    public ChatTemplateKind Kind { get; }

    /// <summary>Why this format was chosen, for the run report.</summary>
    public string Reason { get; }

    /// <summary>The default template (the demo model and folders without a recognised template).</summary>
    public static ChatTemplate Default { get; } = new(ChatTemplateKind.Default, "no chat_template declared");

    /// <summary>A template of a given kind, chosen explicitly.</summary>
    public static ChatTemplate Of(ChatTemplateKind kind) => new(kind, "chosen explicitly");

    /// <summary>Recognises a Jinja <c>chat_template</c> by its markers; null or unknown gives the default.</summary>
    public static ChatTemplate FromJinja(string? jinja)
    {
        if (string.IsNullOrEmpty(jinja)) return Default;
        if (jinja.Contains("<|im_start|>", StringComparison.Ordinal) && jinja.Contains("<|im_end|>", StringComparison.Ordinal))
            return new(ChatTemplateKind.ChatMl, "chat_template uses <|im_start|>/<|im_end|> (ChatML)");
        if (jinja.Contains("<|start_header_id|>", StringComparison.Ordinal) && jinja.Contains("<|eot_id|>", StringComparison.Ordinal))
            return new(ChatTemplateKind.Llama3, "chat_template uses <|start_header_id|>/<|eot_id|> (Llama 3)");
        return new(ChatTemplateKind.Default, "chat_template not recognised (only ChatML and Llama 3 are rendered); using the default template");
    }

    /// <summary>The template declared by <c>tokenizer_config.json</c> in <paramref name="modelFolder"/>.</summary>
    public static ChatTemplate FromModelFolder(string modelFolder) => FromJinja(TokenizerConfigJson.ReadFromFolder(modelFolder).ChatTemplate);

    /// <summary>Renders a conversation; the BOS token, if any, is added by the encoder, not here.</summary>
    public IReadOnlyList<ChatSegment> Render(IReadOnlyList<ChatMessage> messages)
    {
        var segments = new List<ChatSegment>(messages.Count * 2);
        foreach (ChatMessage m in messages)
        {
            bool assistant = m.Role == "assistant";
            switch (Kind)
            {
                case ChatTemplateKind.ChatMl:
                    segments.Add(new($"<|im_start|>{m.Role}\n", false));
                    segments.Add(new(m.Content + "<|im_end|>", assistant));
                    segments.Add(new("\n", false));
                    break;
                case ChatTemplateKind.Llama3:
                    segments.Add(new($"<|start_header_id|>{m.Role}<|end_header_id|>\n\n", false));
                    segments.Add(new(m.Content + "<|eot_id|>", assistant));
                    break;
                default:
                    segments.Add(new($"<|{m.Role}|>\n", false));
                    if (assistant) segments.Add(new(m.Content, true, EosAfter: true));
                    else segments.Add(new(m.Content + "\n", false));
                    break;
            }
        }
        return segments;
    }
}

using QuantPeft.Trainers.Data.Templates;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>The conversation formats QuantPeft renders.</summary>
public enum ChatTemplateKind
{
    /// <summary>QuantPeft's plain-text format; used when the model declares no template. See docs/data.md.</summary>
    Default,
    /// <summary>ChatML (<c>&lt;|im_start|&gt;role\n...&lt;|im_end|&gt;\n</c>), chosen by name.</summary>
    ChatMl,
    /// <summary>Llama 3 headers (<c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n...&lt;|eot_id|&gt;</c>), chosen by name.</summary>
    Llama3,
    /// <summary>The model's own Jinja template, run by QuantPeft's interpreter.</summary>
    Jinja,
}

/// <summary>A piece of a rendered conversation.</summary>
/// <param name="Text">Text to tokenize.</param>
/// <param name="Train">Whether its tokens are loss targets (assistant content and its end-of-turn marker).</param>
/// <param name="EosAfter">Whether an EOS token follows (and is a target), for formats with no textual end-of-turn marker.</param>
public sealed record ChatSegment(string Text, bool Train, bool EosAfter = false);

/// <summary>A conversation rendered by its template, with the character spans that are trained.</summary>
/// <param name="Text">The whole rendering (no generation prompt).</param>
/// <param name="Trained">[start, end) character spans of assistant turns, in order, not overlapping.</param>
/// <param name="UntrainedTurns">Assistant turns left untrained because the full rendering does not hold them as the template renders them when they are generated.</param>
public sealed record RenderedConversation(string Text, IReadOnlyList<(int Start, int End)> Trained, int UntrainedTurns);

/// <summary>
/// Renders <c>messages</c> records into segments whose tokens are or are not trained on. A model's Jinja
/// <c>chat_template</c> (from <c>chat_template.jinja</c> or <c>tokenizer_config.json</c>) is run as transformers runs it;
/// the trained spans come from the template itself, by rendering the conversation prefix by prefix (see
/// <see cref="RenderConversation"/>). Without a template the <see cref="ChatTemplateKind.Default"/> format is used.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The file name of a template kept beside <c>tokenizer_config.json</c> (the newer Hugging Face layout).</summary>
    public const string JinjaFileName = "chat_template.jinja";

    private readonly JinjaTemplate? _jinja;

    private ChatTemplate(ChatTemplateKind kind, string reason, JinjaTemplate? jinja = null, string? bosToken = null, string? eosToken = null)
    {
        Kind = kind;
        Reason = reason;
        _jinja = jinja;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>The format used.</summary>
    public ChatTemplateKind Kind { get; }

    /// <summary>Where the template came from, for the run report.</summary>
    public string Reason { get; }

    /// <summary>The text of the BOS token the template is given as <c>bos_token</c> (null when the model names none).</summary>
    public string? BosToken { get; }

    /// <summary>The text of the EOS token the template is given as <c>eos_token</c>.</summary>
    public string? EosToken { get; }

    /// <summary>The template's source, for <see cref="ChatTemplateKind.Jinja"/>.</summary>
    public string? JinjaSource => _jinja?.Source;

    /// <summary>The clock behind <c>strftime_now</c> (Llama 3.2 prints today's date); the local time by default.</summary>
    public Func<DateTime> Clock { get; set; } = () => DateTime.Now;

    /// <summary>The default template (the demo model and folders without a template).</summary>
    public static ChatTemplate Default { get; } = new(ChatTemplateKind.Default, "no chat_template declared; QuantPeft's default format");

    /// <summary>A built-in format chosen by name.</summary>
    public static ChatTemplate Of(ChatTemplateKind kind) =>
        kind == ChatTemplateKind.Jinja ? throw new ArgumentException("a Jinja template needs its source; use FromJinja", nameof(kind)) : new(kind, "chosen by name");

    /// <summary>Parses a Jinja template; null or empty gives <see cref="Default"/>.</summary>
    /// <param name="jinja">The template source.</param>
    /// <param name="sourceName">Where it came from, named in errors.</param>
    /// <param name="bosToken">The BOS token's text, passed as <c>bos_token</c>.</param>
    /// <param name="eosToken">The EOS token's text, passed as <c>eos_token</c>.</param>
    /// <exception cref="TemplateException">Bad syntax or an unsupported construct.</exception>
    public static ChatTemplate FromJinja(string? jinja, string sourceName, string? bosToken = null, string? eosToken = null) =>
        string.IsNullOrEmpty(jinja) ? Default
            : new(ChatTemplateKind.Jinja, $"Jinja chat_template from {sourceName}", JinjaTemplate.Parse(jinja, sourceName), bosToken, eosToken);

    /// <summary>
    /// The template of a model folder: <c>chat_template.jinja</c> when present, else <c>chat_template</c> of
    /// <c>tokenizer_config.json</c>, else <see cref="Default"/>; BOS/EOS texts come from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <exception cref="TemplateException">The template cannot be parsed.</exception>
    public static ChatTemplate FromModelFolder(string modelFolder)
    {
        TokenizerConfigJson config = TokenizerConfigJson.ReadFromFolder(modelFolder);
        string file = Path.Combine(modelFolder, JinjaFileName);
        if (File.Exists(file)) return FromJinja(File.ReadAllText(file), file, config.BosToken, config.EosToken);
        return FromJinja(config.ChatTemplate, Path.Combine(modelFolder, TokenizerConfigJson.FileName), config.BosToken, config.EosToken);
    }

    /// <summary>
    /// A template by name: <c>default</c>, <c>chatml</c>, <c>llama3</c>, or a path to a <c>.jinja</c> file (run with the
    /// model folder's BOS/EOS texts); null gives the model folder's own template.
    /// </summary>
    /// <exception cref="TemplateException">The file cannot be parsed.</exception>
    /// <exception cref="FileNotFoundException">The named file does not exist.</exception>
    public static ChatTemplate Resolve(string? name, string modelFolder)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case null or "": return FromModelFolder(modelFolder);
            case "default": return Default;
            case "chatml": return Of(ChatTemplateKind.ChatMl);
            case "llama3": return Of(ChatTemplateKind.Llama3);
        }
        if (!File.Exists(name)) throw new FileNotFoundException($"--chat-template: '{name}' is neither default, chatml, llama3 nor an existing .jinja file", name);
        TokenizerConfigJson config = TokenizerConfigJson.ReadFromFolder(modelFolder);
        return FromJinja(File.ReadAllText(name), name, config.BosToken, config.EosToken);
    }

    /// <summary>
    /// Renders <paramref name="messages"/> as text, for generation or display: the Jinja template as transformers runs it
    /// (<c>messages</c>, <c>add_generation_prompt</c>, <c>bos_token</c>, <c>eos_token</c>, plus <paramref name="variables"/> such as
    /// <c>tools</c> or <c>enable_thinking</c>), or the built-in format's text followed by its assistant header.
    /// </summary>
    /// <exception cref="TemplateException">The template raised (for example on a role order it forbids) or failed.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables = null)
    {
        if (_jinja is null)
        {
            string text = string.Concat(Segments(messages).Select(s => s.Text));
            return addGenerationPrompt ? text + GenerationHeader() : text;
        }
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (BosToken is not null) vars["bos_token"] = BosToken;
        if (EosToken is not null) vars["eos_token"] = EosToken;
        if (variables is not null)
            foreach (var (k, v) in variables) vars[k] = v;
        vars["messages"] = messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        vars["add_generation_prompt"] = addGenerationPrompt;
        return _jinja.Render(vars, Clock);
    }

    /// <summary>
    /// Renders a conversation and finds its trained spans from the template itself, without recognising any marker.
    /// For assistant turn i, <c>P</c> = render(turns before i, generation prompt) and <c>Q</c> = render(turns up to i):
    /// the turn is <c>Q</c> after the part it shares with <c>P</c>, as the template emits it when the turn is generated
    /// (end-of-turn tokens and thinking blocks included; an EOS the template writes only after the last turn is dropped
    /// where a later turn follows). It is trained where the full rendering <c>F</c> starts with <c>Q</c> up to the turn's end;
    /// otherwise the template renders the turn or its context differently once later turns follow (Qwen3 drops earlier
    /// thinking, Mistral Nemo moves the system prompt), the model would never generate it from that text, and the turn is
    /// left untrained and counted.
    /// </summary>
    /// <exception cref="TemplateException">The template raised or failed on the conversation or one of its prefixes.</exception>
    public RenderedConversation RenderConversation(IReadOnlyList<ChatMessage> messages)
    {
        if (_jinja is null)
        {
            var text = new System.Text.StringBuilder();
            var spans = new List<(int, int)>();
            foreach (ChatSegment s in Segments(messages))
            {
                if (s.Train) spans.Add((text.Length, text.Length + s.Text.Length));
                text.Append(s.Text);
            }
            return new RenderedConversation(text.ToString(), spans, 0);
        }
        string full = Render(messages, addGenerationPrompt: false);
        var trained = new List<(int Start, int End)>();
        int untrained = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant") continue;
            string prompt;
            try
            {
                prompt = Render([.. messages.Take(i)], addGenerationPrompt: true);
            }
            catch (TemplateException) when (i == 0)
            {
                // Many templates read messages[0] and cannot render an empty conversation: a conversation that opens
                // with an assistant turn has no prompt that turn could be generated from.
                untrained++;
                continue;
            }
            string turn = Render([.. messages.Take(i + 1)], addGenerationPrompt: false);
            // The turn starts where its rendering departs from the generation prompt (the DeepSeek-R1 distill's prompt
            // ends in a newline its rendered turns lack) ...
            int start = CommonPrefix(prompt, turn);
            // ... and ends where the turn's rendering ends, less the EOS some templates write only after the last turn (Phi-3.5).
            int end = turn.Length;
            if (!full.StartsWith(turn, StringComparison.Ordinal) && EosToken is { Length: > 0 } eos && turn.EndsWith(eos, StringComparison.Ordinal)
                && full.AsSpan().StartsWith(turn.AsSpan(0, turn.Length - eos.Length)))
                end = turn.Length - eos.Length;
            // Only whitespace of the prompt may be missing from the turn; anything more means the turn was rendered in
            // another context than the one it is generated from.
            bool sameContext = prompt.AsSpan(start).IsWhiteSpace();
            if (!sameContext || end <= start || !full.AsSpan().StartsWith(turn.AsSpan(0, end)) || (trained.Count > 0 && start < trained[^1].End))
            {
                untrained++;
                continue;
            }
            trained.Add((start, end));
        }
        return new RenderedConversation(full, trained, untrained);
    }

    private static int CommonPrefix(string a, string b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        // Never split a surrogate pair.
        if (n > 0 && n < a.Length && char.IsLowSurrogate(a[n])) n--;
        return n;
    }

    /// <summary>The conversation as segments to tokenize one by one: untrained and trained text in turn.</summary>
    /// <exception cref="TemplateException">The template raised or failed.</exception>
    public IReadOnlyList<ChatSegment> Render(IReadOnlyList<ChatMessage> messages)
    {
        if (_jinja is null) return Segments(messages);
        RenderedConversation r = RenderConversation(messages);
        var segments = new List<ChatSegment>();
        int at = 0;
        foreach (var (start, end) in r.Trained)
        {
            if (start > at) segments.Add(new(r.Text[at..start], false));
            segments.Add(new(r.Text[start..end], true));
            at = end;
        }
        if (at < r.Text.Length) segments.Add(new(r.Text[at..], false));
        return segments;
    }

    private string GenerationHeader() => Kind switch
    {
        ChatTemplateKind.ChatMl => "<|im_start|>assistant\n",
        ChatTemplateKind.Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
        _ => "<|assistant|>\n",
    };

    private IReadOnlyList<ChatSegment> Segments(IReadOnlyList<ChatMessage> messages)
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

using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>
/// The Ollama <c>Modelfile</c> written beside a GGUF export: <c>FROM</c> the file, the chat template as an Ollama (Go)
/// <c>TEMPLATE</c> for the templates that translate exactly (ChatML, Llama 3), and <c>PARAMETER stop</c> at their end-of-turn
/// marker. Other templates (and models without one) get no <c>TEMPLATE</c>, and <see cref="Build"/> says so, because a
/// hand-guessed translation of arbitrary Jinja would silently prompt the model differently from its training.
/// </summary>
public static class OllamaModelfile
{
    /// <summary>The file name: the GGUF's name with <c>.Modelfile</c> in place of <c>.gguf</c>.</summary>
    public static string PathFor(string gguf) => Path.ChangeExtension(gguf, ".Modelfile");

    /// <summary>The Modelfile text for <paramref name="ggufFileName"/> and a note when the template could not be translated.</summary>
    public static (string Text, string? Note) Build(string ggufFileName, ChatTemplate template, bool declared)
    {
        var lines = new List<string> { $"FROM ./{ggufFileName}" };
        string? note = null;
        switch (Equivalent(template))
        {
            case ChatTemplateKind.ChatMl:
                lines.Add("TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                    + "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n\"\"\"");
                lines.Add("PARAMETER stop \"<|im_end|>\"");
                break;
            case ChatTemplateKind.Llama3:
                lines.Add("TEMPLATE \"\"\"{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
                    + "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
                    + "<|start_header_id|>assistant<|end_header_id|>\n\n\"\"\"");
                lines.Add("PARAMETER stop \"<|eot_id|>\"");
                break;
            default:
                note = declared
                    ? "the model's chat_template is neither ChatML nor Llama 3, so the Modelfile has no TEMPLATE; Ollama will use the template embedded in the GGUF (tokenizer.chat_template) if it recognises it"
                    : "the model declares no chat_template, so the Modelfile has no TEMPLATE (Ollama sends raw prompts)";
                break;
        }
        return (string.Join("\n", lines) + "\n", note);
    }

    /// <summary>
    /// The built-in format a template renders exactly like, judged by rendering the same probe conversations (with and
    /// without a system prompt, with the generation prompt) through both; the template itself when none matches.
    /// </summary>
    public static ChatTemplateKind Equivalent(ChatTemplate template)
    {
        if (template.Kind != ChatTemplateKind.Jinja) return template.Kind;
        ChatMessage[][] probes =
        [
            [new("system", "S"), new("user", "U")],
            [new("user", "U"), new("assistant", "A"), new("user", "V")],
        ];
        foreach (var kind in new[] { ChatTemplateKind.ChatMl, ChatTemplateKind.Llama3 })
        {
            var builtIn = ChatTemplate.Of(kind);
            try
            {
                if (probes.All(p => template.Render(p, addGenerationPrompt: true) == builtIn.Render(p, addGenerationPrompt: true)
                    || template.Render(p, addGenerationPrompt: true) == template.BosToken + builtIn.Render(p, addGenerationPrompt: true)))
                    return kind;
            }
            catch (QuantPeft.Trainers.Data.Templates.TemplateException)
            {
                return ChatTemplateKind.Jinja;
            }
        }
        return ChatTemplateKind.Jinja;
    }
}

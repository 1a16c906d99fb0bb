using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Export.Gguf;

namespace QuantPeft.Trainers.Tests.Export.Gguf;

/// <summary>The Modelfile's TEMPLATE, rendered by hand for a system + user turn, gives the text QuantPeft's chat prompt renders.</summary>
public class OllamaModelfileTests
{
    // A minimal reading of the two Go templates for .System = S and one user message U: what Ollama sends.
    [Theory]
    [InlineData(ChatTemplateKind.ChatMl, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>")]
    [InlineData(ChatTemplateKind.Llama3, "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")]
    public void TemplatesRenderLikeTheChatPromptAndStopAtTheEndOfTurn(ChatTemplateKind kind, string rendered, string stop)
    {
        var (text, note) = OllamaModelfile.Build("m.gguf", ChatTemplate.Of(kind), declared: true);
        Assert.Null(note);
        Assert.StartsWith("FROM ./m.gguf\n", text);
        Assert.Contains($"PARAMETER stop \"{stop}\"", text);
        string template = text[(text.IndexOf("TEMPLATE \"\"\"", StringComparison.Ordinal) + 12)..text.LastIndexOf("\"\"\"", StringComparison.Ordinal)];
        string expanded = template
            .Replace("{{- if .System }}", "").Replace("{{ .System }}", "S").Replace("{{ end }}{{- range .Messages }}", "")
            .Replace("{{ .Role }}", "user").Replace("{{ .Content }}", "U").Replace("{{ end }}", "");
        Assert.Equal(rendered, expanded);
        // QuantPeft's own rendering of the same conversation plus the generation prompt.
        string ours = string.Concat(ChatTemplate.Of(kind).Render([new ChatMessage("system", "S"), new ChatMessage("user", "U")]).Select(s => s.Text))
            + QuantPeft.Trainers.Generation.ChatPrompt.GenerationPrefix(kind);
        Assert.Equal(ours, rendered);
    }

    [Fact]
    public void OtherTemplatesGetNoTemplateAndANote()
    {
        var (text, note) = OllamaModelfile.Build("m.gguf", ChatTemplate.FromJinja("{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}", "t.jinja"), declared: true);
        Assert.Equal("FROM ./m.gguf\n", text);
        Assert.Contains("neither ChatML nor Llama 3", note);
    }
}

/// <summary>A model's own Jinja template gets the Ollama TEMPLATE of the built-in format it renders exactly like, and only then.</summary>
public class OllamaModelfileJinjaTests
{
    // The ChatML template many fine-tunes ship (the shape of OpenHermes' tokenizer_config.json).
    private const string ChatMlJinja =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    [Fact]
    public void AChatMlJinjaTemplateGetsTheChatMlTemplate()
    {
        var template = ChatTemplate.FromJinja(ChatMlJinja, "chatml.jinja");
        Assert.Equal(ChatTemplateKind.ChatMl, OllamaModelfile.Equivalent(template));
        var (text, note) = OllamaModelfile.Build("m.gguf", template, declared: true);
        Assert.Null(note);
        Assert.Contains("PARAMETER stop \"<|im_end|>\"", text);
    }

    [Fact]
    public void ATemplateThatDiffersInOneCharacterGetsNone()
    {
        // The same template with a space after the role: every probe renders differently from ChatML.
        var template = ChatTemplate.FromJinja(ChatMlJinja.Replace("message['role'] + '\\n'", "message['role'] + ' \\n'"), "near.jinja");
        Assert.Equal(ChatTemplateKind.Jinja, OllamaModelfile.Equivalent(template));
        var (text, note) = OllamaModelfile.Build("m.gguf", template, declared: true);
        Assert.Equal("FROM ./m.gguf\n", text);
        Assert.NotNull(note);
    }
}

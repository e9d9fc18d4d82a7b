"""The Gradio app (the Hugging Face Space): a text in, its analysis as pictures, the JSON one click away.

    python -m redheart.serving.gradio_app [--model PATH] [--host 127.0.0.1] [--port 7860]
    python app.py                                     # the same, as a Space runs it (REDHEART_MODEL)

Inputs: the text, alternatives (one per line), an explain switch (exact SURD over clause subsets, with its
judgement and binning) and an optional photo. Outputs: the emotion distribution, the photo's faces (each
face's 7 expression probabilities and a table of faces), the Bentham elements, acceptability per framework,
regret under the three scenarios next to the utilities behind it, the SURD shares and the clause explanation
as charts and tables (``gradio_views``), a summary of the headline numbers and of what is untrained, and the
whole result in a closed accordion. The app fetches nothing from the internet at run time: no analytics, no
share link, no server-side rendering, and the theme's fonts are served by the app itself.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import gradio as gr

from . import gradio_views as views
from .errors import ServiceError
from .service import AnalysisService
from .settings import ServingSettings

#: The environment variable naming the model folder or Hub id (unset: the default model).
MODEL_ENV = "REDHEART_MODEL"
TOP_EMOTIONS = 5
EXAMPLES = [
    [
        "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다",
        "약속을 지키고 친구를 만났다\n친구에게 미리 사정을 말했다",
        True,
    ],
    ["길에서 주운 지갑을 주인에게 돌려주었다", "", False],
    ["I lied to my friend, but it spared her feelings.", "I told her the truth gently.", True],
    ["I returned the wallet I found on the street.", "I kept the money.", False],
]
CSS = "#rh-summary {min-height: 12em} footer {display: none !important}"


def build_app(service: AnalysisService) -> gr.Blocks:
    """The app's layout and its one event, over ``service``."""
    model = service.describe()["model"]["name_or_path"]
    with gr.Blocks(title="Red Heart", analytics_enabled=False) as app:
        gr.Markdown(
            "# Red Heart — ethics and emotion analysis\n"
            "Korean and English: emotions, a Bentham-style judgement with acceptability per ETHICS framework, "
            f"anticipated regret, and the causal structure (SURD) of the judgement. Model: `{model}`."
        )
        with gr.Row():
            with gr.Column(scale=2):
                text = gr.Textbox(
                    label="Text", lines=3, placeholder="친구와의 약속을 어기고 야근을 했다", elem_id="rh-text"
                )
                alternatives = gr.Textbox(
                    label="Alternatives (one per line; regret is measured against them)",
                    lines=2,
                    elem_id="rh-alts",
                )
                with gr.Row():
                    explain = gr.Checkbox(
                        label="Explain (exact SURD over clauses)", value=False, elem_id="rh-explain"
                    )
                    judgement = gr.Dropdown(
                        ["ethical_score", "valence", "regret"],
                        value="ethical_score",
                        label="Judgement explained",
                    )
                    binning = gr.Radio(["fixed", "range"], value="range", label="Binning")
                image = gr.Image(
                    label="Photo (optional): the faces' expressions join the reading",
                    type="numpy",
                    sources=["upload", "clipboard"],
                    height=220,
                    elem_id="rh-image",
                )
                submit = gr.Button("Analyse", variant="primary", elem_id="rh-submit")
            with gr.Column(scale=3):
                summary = gr.Markdown("The analysis appears here.", elem_id="rh-summary")
        gr.Examples(EXAMPLES, inputs=[text, alternatives, explain], cache_examples=False)
        emotions = gr.BarPlot(
            x="emotion",
            y="probability",
            sort="-y",
            y_lim=[0, 1],
            x_label_angle=-45,
            label="Emotions (GoEmotions, 28 labels)",
            elem_id="rh-emotions",
        )
        with gr.Row():
            faces = gr.BarPlot(
                x="expression",
                y="probability",
                color="face",
                y_lim=[0, 1],
                x_label_angle=-45,
                label="Faces in the photo (FER2013 expressions)",
                elem_id="rh-faces",
            )
            face_rows = gr.Dataframe(
                headers=views.FACE_COLUMNS, label="Faces (box in the photo's pixels)", interactive=False
            )
        with gr.Row():
            elements = gr.BarPlot(
                x="element", y="value", y_lim=[0, 1], x_label_angle=-45, label="Bentham elements (latent)"
            )
            acceptability = gr.BarPlot(
                x="framework", y="acceptability", y_lim=[0, 1], label="Acceptability per ETHICS framework"
            )
        with gr.Row():
            regret = gr.BarPlot(
                x="scenario",
                y="regret",
                y_lim=[0, 1],
                label="Regret under three scenarios (needs alternatives)",
            )
            utility = gr.BarPlot(
                x="option", y="utility", x_label_angle=-30, label="Utility: the choice and its alternatives"
            )
        with gr.Row():
            surd = gr.BarPlot(x="share", y="value", y_lim=[0, 1], label="SURD shares")
            with gr.Column():
                explanation = gr.Markdown(
                    views.explanation_text({"analysis": {"surd": {}}}), elem_id="rh-explanation"
                )
                clauses = gr.Dataframe(headers=views.CLAUSE_COLUMNS, label="Clauses", interactive=False)
        with gr.Accordion("Full result (JSON)", open=False):
            raw = gr.JSON(elem_id="rh-json")

        async def analyse(
            text_in: str,
            alternatives_in: str,
            explain_in: bool,
            judgement_in: str,
            binning_in: str,
            image_in: Any,
        ):
            alts = [line.strip() for line in (alternatives_in or "").splitlines() if line.strip()] or None
            options: Any = {"judgement": judgement_in, "binning": binning_in} if explain_in else False
            try:
                result = await service.analyze(
                    text_in, alternatives=alts, image=image_in, explain=options, top_k=TOP_EMOTIONS
                )
            except ServiceError as err:
                raise gr.Error(err.message) from err
            return (
                views.summary_text(result),
                views.emotion_bars(result),
                in_order(views.face_bars(result)),
                views.face_table(result),
                in_order(views.element_bars(result)),
                in_order(views.acceptability_bars(result)),
                in_order(views.regret_bars(result)),
                in_order(views.utility_bars(result), y_lim=views.utility_range(result)),
                in_order(views.surd_bars(result)),
                views.explanation_text(result),
                views.clause_table(result),
                result,
            )

        outputs = [
            summary,
            emotions,
            faces,
            face_rows,
            elements,
            acceptability,
            regret,
            utility,
            surd,
            explanation,
            clauses,
            raw,
        ]
        inputs = [text, alternatives, explain, judgement, binning, image]
        event = {
            "fn": analyse,
            "inputs": inputs,
            "outputs": outputs,
            "concurrency_limit": service.settings.max_batch_size,
        }
        submit.click(**event)
        text.submit(**event)
    return app


def in_order(table: Any, **props: Any) -> gr.BarPlot:
    """A chart update that keeps the table's row order (a bar chart sorts its categories by name otherwise)."""
    return gr.BarPlot(value=table, sort=[str(x) for x in table.iloc[:, 0]], **props)


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, **kwargs: Any) -> Any:
    """Serve ``app`` with nothing fetched from outside: no share link, no analytics, no SSR node server."""
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        show_error=True,
        css=CSS,
        **kwargs,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m redheart.serving.gradio_app", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV) or None,
        help=f"model folder or Hub id (default: ${MODEL_ENV})",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    args = parse_args(argv)
    service = AnalysisService(ServingSettings.from_env(model=args.model))
    launch(build_app(service), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

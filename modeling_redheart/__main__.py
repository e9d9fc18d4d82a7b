"""`python -m redheart.modeling_redheart [--preset 330m]`: print the parameter budget measured from the modules."""

import argparse

from ..configuration_redheart import RedHeartConfig
from .budget import base_encoder_parameters, format_breakdown, parameter_breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="330m", help="tiny, small or 330m")
    args = parser.parse_args()
    config = RedHeartConfig.from_preset(args.preset)
    # The production trio's architectures are known; count them too when the preset uses them.
    encoders = (
        base_encoder_parameters() if set(config.encoders) == {"kcelectra", "roberta", "klue_bert"} else None
    )
    print(format_breakdown(parameter_breakdown(config, encoders)))


if __name__ == "__main__":
    main()

"""Transfer evaluation of pretrained backbones: frozen-feature classifiers, detection, the suite and its report."""

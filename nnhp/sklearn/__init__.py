"""scikit-learn estimators built on nnhp's own MLP, training loop and tuner (the ``sklearn`` extra).

::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from nnhp.sklearn import MLPClassifier, TunedMLPClassifier

    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(128,), epochs=50, random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

    tuned = TunedMLPClassifier(timeout=60, random_state=0).fit(X_train, y_train)
    tuned.best_params_, tuned.best_score_, tuned.study_

==========================  ===============================================  ==================
estimator                   what ``fit`` runs                                file
==========================  ===============================================  ==================
``MLPClassifier``           :func:`nnhp.fit` on the labels                   ``mlp.py``
``MLPRegressor``            :func:`nnhp.fit` on float targets (one or more)  ``mlp.py``
``TunedMLPClassifier``      :func:`nnhp.tune`, then its best (refit) model   ``tuned.py``
``TunedMLPRegressor``       :func:`nnhp.tune`, then its best (refit) model   ``tuned.py``
==========================  ===============================================  ==================

What the four share -- scikit-learn's input validation, any labels in and out, probabilities and
decision values from the network's logits, pickling -- is in ``base.py``. They pass scikit-learn's
own estimator checks (``tests/test_sklearn.py`` lists the few expected failures and why).

scikit-learn is imported only here: ``import nnhp`` never loads it.
"""
try:
    import sklearn  # noqa: F401
except ImportError as exc:      # pragma: no cover - depends on the environment
    raise ImportError("nnhp.sklearn needs scikit-learn: pip install 'nnhp[sklearn]'") from exc

from .mlp import MLPClassifier, MLPRegressor
from .tuned import TunedMLPClassifier, TunedMLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "TunedMLPClassifier", "TunedMLPRegressor"]

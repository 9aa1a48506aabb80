"""The retrieval rules that training and the cluster tools share, each in one place.

``beir`` reads BEIR-layout dataset folders; ``splits`` is the one train/dev split of judged queries;
``metrics`` evaluates rankings with ranx; ``fusion`` is the Python reference of the plugin's score fusion
(the test oracle of the Java ``ScoreFusion`` and the fusion the offline tools use). Nothing here talks to a
cluster or a model.
"""

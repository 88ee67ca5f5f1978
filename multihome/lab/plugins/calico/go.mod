module multihome/calico

go 1.19
